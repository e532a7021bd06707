"""A MAAS 2.0 REST API emulator, faithful enough for the unmodified python-libmaas.

Entry points: `maas_emulator.server.build_app(EmulatorConfig, hook=...)` in process,
`python -m maas_emulator ...` as a process. Admin endpoints: see `maas_emulator.admin`.
"""
