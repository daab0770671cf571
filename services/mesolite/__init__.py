"""mesolite: the Apache Mesos stack re-made as small Python services."""

# The version the master reports on /version. pymesos parses it as dotted integers and enables features for >= 1.0,
# so it mirrors the Mesos API level we speak rather than the package version.
MESOS_VERSION = "1.11.0"
__version__ = "0.1.0"
