"""Stopping the robot (issue 25): the one "may automation change this now?" answer every flow
asks (:mod:`.deferral`), the incident freeze (:mod:`.incidents`), and their entry points
(:mod:`.handler`). The arithmetic is :mod:`ecspilot.domain.stops`; the state table's items are
:mod:`ecspilot.aws.freezes`."""
