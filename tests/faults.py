"""Injected AWS faults: the reusable fault fixture of the functional tests and the bench.

A :class:`Faults` is attached to a boto3 session before its clients are made (the ``clients``
fixture does it); rules added later apply to every client of that session. Each rule matches an
operation (``"RunTask"``, ``"*"``), optionally a service (``"dynamodb"``) and a predicate on the
call's parameters, and fails it in one of four ways:

``error``       the call fails with an AWS error code (``ThrottlingException`` by default) before
                anything is sent: botocore does not retry it, so it is a fault *beyond retries*,
                and AWS never applied it;
``network``     the call raises :class:`botocore.exceptions.EndpointConnectionError` before
                anything is sent (beyond retries, not applied);
``lost-reply``  the request reaches moto and is applied, but its reply is replaced by a 500
                ``InternalFailure``: botocore's retry then sends the request again (the reply lost
                on the way back of a RegisterTaskDefinition, an UpdateService...);
``throttle``    the request is answered ``ThrottlingException`` (or ``code``) *instead of*
                reaching moto (not applied): botocore's retry mode retries it as it would a
                real throttle, so only a run of throttles longer than its attempts gets through;
``bucket``      ECS's own throttling: a token bucket per rule (``burst`` tokens, ``per_second``
                refill, on the wall clock); an attempt that finds a token passes to moto, one that
                does not is answered ``ThrottlingException`` instead of reaching moto, as
                ``throttle`` (every attempt counts, botocore's retries included; ``fired`` counts
                the throttled ones). One rule per operation is ECS's bucket for one account;
``exception``   the call raises the given exception (a bug in a part, anything unexpected);
``delay``       the call waits ``seconds`` before it is sent, then goes through (to order racing
                threads: the delayed call lands last);
``pause``       the call stops before it is sent: ``rule.reached`` is set and the call waits for
                ``rule.release`` (at most ``seconds``, 30 by default), then goes through. A forced
                interleaving on real threads: wait for ``reached``, do the other thread's part,
                set ``release`` (:meth:`Faults.pause`).

``times`` bounds how often a rule fires (None: always); ``rate`` fires it on that share of the
matching calls, drawn from a seeded generator so a run is repeatable. ``fired`` counts.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

Mode = Literal["error", "network", "lost-reply", "throttle", "bucket", "exception", "delay", "pause"]


@dataclass
class Rule:
    operation: str
    mode: Mode = "error"
    code: str = "ThrottlingException"
    status: int = 400
    service: str | None = None
    times: int | None = None
    rate: float = 1.0
    when: Callable[[Mapping[str, Any]], bool] | None = None
    exception: BaseException | None = None
    seconds: float = 0.0
    fired: int = 0
    seen: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    burst: float = 0.0  # bucket mode
    per_second: float = 0.0
    tokens: float = -1.0  # -1: full at the first attempt
    stamp: float = 0.0
    reached: threading.Event = field(default_factory=threading.Event)  # pause mode
    release: threading.Event = field(default_factory=threading.Event)

    def matches(self, service: str, operation: str) -> bool:
        return self.operation in ("*", operation) and self.service in (None, service)

    def take(self, params: Mapping[str, Any]) -> bool:
        """Whether this call fails (called under the injector's lock)."""
        if self.when is not None and not self.when(params):
            return False
        self.seen += 1
        if self.mode == "bucket":
            return self._no_token()
        if self.times is not None and self.fired >= self.times:
            return False
        if self.rate < 1.0 and self.rng.random() >= self.rate:
            return False
        self.fired += 1
        return True

    def _no_token(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return False
        self.fired += 1
        return True


class Faults:
    """Fault rules consulted by every client of the sessions it is attached to."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._lock = threading.RLock()  # a ``when`` predicate may call AWS itself
        self._params = threading.local()

    def attach(self, session: Any) -> Faults:
        """Hook into ``session`` (before it makes clients)."""
        session.events.register_first("provide-client-params.*.*", self._remember)
        session.events.register_first("before-call.*.*", self._before_call)
        session.events.register_first("before-send.*.*", self._before_send)
        return self

    def fail(
        self,
        operation: str = "*",
        mode: Mode = "error",
        *,
        code: str = "ThrottlingException",
        status: int | None = None,
        service: str | None = None,
        times: int | None = None,
        rate: float = 1.0,
        seed: int = 0,
        when: Callable[[Mapping[str, Any]], bool] | None = None,
        exception: BaseException | None = None,
        seconds: float = 0.0,
        burst: float = 0.0,
        per_second: float = 0.0,
    ) -> Rule:
        """Add a rule; see the module docstring. Returns it (``rule.fired`` counts)."""
        if status is None:
            status = 400 if code.endswith(("Exception", "Throttling", "Exceeded")) else 500
        rule = Rule(
            operation,
            mode,
            code,
            status,
            service,
            times,
            rate,
            when,
            exception,
            seconds,
            rng=random.Random(seed),
            burst=burst,
            per_second=per_second,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def pause(
        self,
        operation: str,
        *,
        service: str | None = None,
        times: int | None = 1,
        when: Callable[[Mapping[str, Any]], bool] | None = None,
        seconds: float = 30.0,
    ) -> Rule:
        """Stop the matching call(s) before they are sent until ``rule.release`` is set (see the
        module docstring): ``rule.reached`` says a call is waiting."""
        return self.fail(operation, "pause", service=service, times=times, when=when, seconds=seconds)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    @contextmanager
    def active(self, *rules: Rule) -> Iterator[None]:
        """Remove ``rules`` on exit (the fault passes)."""
        try:
            yield
        finally:
            with self._lock:
                self.rules = [r for r in self.rules if all(r is not x for x in rules)]

    # botocore hooks --------------------------------------------------------------------------

    def _pick(
        self, service: str, operation: str, params: Mapping[str, Any], modes: tuple[str, ...]
    ) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.mode in modes and rule.matches(service, operation) and rule.take(params):
                    return rule
        return None

    def _remember(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        self._params.value = dict(params)

    def _before_call(self, model: Any, params: Mapping[str, Any], **_: Any) -> Any:
        service = model.service_model.service_name
        call_params = getattr(self._params, "value", None) or dict(params)
        rule = self._pick(
            service, model.name, call_params, ("error", "network", "exception", "delay", "pause")
        )
        if rule is None:
            return None
        if rule.mode == "pause":  # outside the lock: the other threads' calls go on meanwhile
            rule.reached.set()
            rule.release.wait(rule.seconds)
            return None
        if rule.mode == "delay":
            time.sleep(rule.seconds)
            return None
        if rule.mode == "network":
            raise EndpointConnectionError(endpoint_url=f"https://{service}.injected-fault.invalid")
        if rule.mode == "exception":
            raise rule.exception or RuntimeError(f"injected failure in {model.name}")
        http = AWSResponse(
            url="https://injected-fault.invalid", status_code=rule.status, headers={}, raw=None
        )
        parsed = {
            "Error": {"Code": rule.code, "Message": f"injected {rule.code} on {model.name}"},
            "ResponseMetadata": {"HTTPStatusCode": rule.status, "RequestId": "injected-fault"},
        }
        return http, parsed

    def _before_send(self, request: Any, **kwargs: Any) -> Any:
        # the event name is before-send.<service id>.<Operation>; the request carries neither
        # the service name nor the parameters, so lost-reply rules match on the operation only
        # (and on the service id, compared case-insensitively).
        event_name = str(kwargs.get("event_name", ""))
        parts = event_name.split(".")
        service_id = parts[1].lower().replace("-", "") if len(parts) > 2 else ""
        operation = parts[2] if len(parts) > 2 else ""
        params = getattr(self._params, "value", None) or {}
        rule = self._pick(service_id, operation, params, ("lost-reply", "throttle", "bucket"))
        if rule is None:
            return None
        headers = {"x-amzn-RequestId": "injected-fault"}
        if rule.mode in ("throttle", "bucket"):
            # moto's own before-send handler runs after ours; pointed elsewhere, it lets it pass
            request.url = "https://throttled.injected-fault.invalid/"
            body = json.dumps({"__type": rule.code, "message": f"injected {rule.code}"}).encode()
            return _LostReply(status_code=rule.status, headers=headers, body=body)
        body = b'{"__type":"InternalFailure","message":"injected: the reply was lost"}'
        return _LostReply(status_code=500, headers=headers, body=body)


class _LostReply(AWSResponse):
    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(
            url="https://injected-fault.invalid", status_code=status_code, headers=headers, raw=None
        )
        self._body = body

    @property
    def content(self) -> bytes:
        return self._body
