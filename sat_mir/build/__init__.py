"""The build: turn the extracted features into what stable-audio-tools trains on.

``python -m sat_mir.build`` (``__main__``) translates the config into
:class:`~sat_mir.build.pipeline.BuildSettings`; :func:`~sat_mir.build.pipeline.run_build` calls
the steps of :mod:`sat_mir.build.steps` in order, each backed by one module:

====================================  =====================================================
step                                  modules
====================================  =====================================================
1. items (crops or chunks)            ``corpus``
2. item audio, read back              ``chunks``, ``validate``
3. trusted facts, word bins           ``confidence``, ``bins``
4. numeric conditionings              ``conditioning``
5. prompt material                    ``material``, ``user_metadata``, ``validate``
6. latents                            ``autoencoder``, ``latents``
7. custom_metadata, shards, configs   ``manifest``, ``shards``, ``sat_files``
8. model configs, notes, table        ``conditioning``, ``sat_files``
====================================  =====================================================

``preview`` (``python -m sat_mir.build.preview``) calls the written custom_metadata module the
way SAT will and prints the prompts.
"""

__all__: list[str] = []
