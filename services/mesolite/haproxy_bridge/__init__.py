"""The HAProxy bridge: an app's service port on every node, from Marathon, through a real HAProxy."""
