"""Container images for the Mesos containerizer (``--image_providers docker``): Docker image references, the
registry and tarball pullers, the digest-addressed image store and the per-container root filesystems.

The pieces, bottom up: ``reference`` (what an image name means and which registry serves it), ``store`` (layers
unpacked once under ``--docker_store_dir``), ``puller`` (``docker save`` tarballs from a local ``--docker_registry``
directory, and the dispatch between tarballs and registries), ``registry`` (the Docker registry v2 API with
``--docker_config`` credentials), ``provisioner`` (a container's rootfs: an overlay mount or a copy of the layers)
and ``runtime`` (what the containerizer calls before a container starts: it provisions, merges the image's config
with the CommandInfo and hands the container init its instructions).
"""
