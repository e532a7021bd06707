"""The live API of tests/api (real store and dev server, stand-in workflows) for the
hostile-input suite."""

from tests.api.conftest import (  # noqa: F401 (fixtures used by name)
    api,
    control_plane_standins,
    cp_activities,
    project,
    system_gateway,
)
