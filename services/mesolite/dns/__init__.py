"""Mesos-DNS: DNS and HTTP discovery of the tasks a Mesos master runs, with Mesos-DNS' config file, names and answers.

``config`` reads Mesos-DNS' config.json; ``generator`` turns ``/master/state`` into records by upstream's rules;
``detect`` finds the leading master (configured list or ZooKeeper); ``resolver`` answers DNS messages from a record
set (``fastpath`` and ``wire`` answer plain queries straight from the bytes, dnslib the rest); ``listener`` serves
them over UDP and TCP (in worker processes sharing the port through SO_REUSEPORT); ``state`` owns the refresh loop
and the workers; ``api`` is the HTTP API.
"""
