"""DAEMON services and managed daemons that must exist on clusters."""
