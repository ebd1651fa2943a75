"""Hydra search-path plugin: every installed diffusionkit plugin's ``conf/`` joins the search path.

Hydra discovers this module because it lives in the ``hydra_plugins`` namespace package.
Config folders are added as ``file://`` paths found from each package's location on disk, so
composing a run never imports plugin code (a broken plugin cannot break the others).
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class DiffusionkitSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from diffusionkit.plugins import discover

        for plugin in discover():
            if plugin.conf_dir is not None:
                search_path.append(provider=f"diffusionkit-{plugin.name}", path=f"file://{plugin.conf_dir}")
