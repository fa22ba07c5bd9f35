"""A workspace's trained models -> per-frame values: what ``abaw predict`` runs, and what the training
stages share with it (the TMF's and the frame model's prediction loops, the vision encoder loader).

Rooms (each imports only from below it, never from ``stages``):
- ``clip``: ``Clip``, a video as the models see it (frame times, face rows and crops, audio);
- ``models``: ``Models``, the workspace's finished stages loaded once per run (``stage_dir``, fold choice);
- ``checks``: identities of the models a prediction loads, and the check of each against what the model
  downstream of it was trained with (encoder vs feature store, feature store vs TMF);
- ``extractors``: the vision / audio extractor that made a feature store, re-run on one clip;
- ``frame``: the fine-tuned frame model (``predict_frames``, ``frame_model_values``);
- ``tmf``: the TMF (``build_tmf``, ``predict_clips``, ``tmf_values``; built from its checkpoint's ``arch``);
- ``video``: the video-level model (``predict_videos``, ``video_values``, ``clip_row``: one row per video,
  the folds combined as the submission combines them);
- ``values``: fold-averaged values of one face;
- ``decide``: nearest-frame index, smoothing policy and decisions, the CSV columns of a task.
"""
