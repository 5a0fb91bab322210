"""Reconcile: desired (config) vs actual (AWS) -> a plan -> apply; its triggers and the stack's custom resource."""
