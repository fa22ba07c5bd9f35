"""A procedural Aff-Wild2-like release that small models can learn from (``abaw synth``).

Writes the official layout (SPEC section 2) under one folder: annotation files per challenge and
split, ``cropped_aligned/<video>/00001.jpg`` face crops, ``videos/<source>.mp4`` (H.264 + AAC
audio), test-set name lists with submission templates, and ``test_ground_truth/`` for the test
videos (only the demo's scorer reads it). Faces are drawn with OpenCV: every AU moves a visible
part (brows, lids, cheeks, lips, jaw); expressions switch in 1-4 s segments with a consistent AU
pattern; valence/arousal are smooth trajectories pulled towards the expression's target; the audio
is a voiced harmonic tone whose pitch/loudness follow arousal and whose timbre follows expression.
Quirks of the real release are reproduced: ``_left``/``_right`` names sharing one video, missing
crops, videos with no crop folder at all, runs of invalid labels, names annotated for only some
tasks. ``pretrain_faces/`` holds unlabelled faces of many more people for MAE pre-training.
``ship_layout`` rearranges a written release into the shape the organisers' archives unpack to
(edition folder, nested crop roots, batch folders, AVI files, ABAW6 names). Everything is a pure
function of the seed.

Parts: ``spec`` (sizes, names, tables), ``labels`` (expression, AU and VA tracks, annotation text),
``faces`` (drawing), ``media`` (voice, mp4), ``layout`` (the release on disk), ``shipped`` (the
as-shipped rearrangement).
"""

from abawkit.release.synth.faces import draw_face, jitter
from abawkit.release.synth.labels import (annotation_text, au_track, expression_track, invalid_run, make_person,
                                          va_track)
from abawkit.release.synth.layout import (plan_release, render_source, write_face_pool, write_labels, write_source,
                                          write_test_lists)
from abawkit.release.synth.media import voice, write_mp4
from abawkit.release.synth.shipped import SHIPPED_ANNOTATIONS, SHIPPED_TEMPLATE, ship_layout, write_avi
from abawkit.release.synth.spec import (EXPR_AUS, EXPR_F0, EXPR_HARM, EXPR_PRIOR, EXPR_VA, ROLE_FOLDER, TEMPLATE_NAME,
                                        TEST_LIST_PREFIX, Person, Source, SynthSpec)

__all__ = [
    "EXPR_AUS", "EXPR_F0", "EXPR_HARM", "EXPR_PRIOR", "EXPR_VA", "ROLE_FOLDER", "SHIPPED_ANNOTATIONS", "SHIPPED_TEMPLATE",
    "TEMPLATE_NAME", "TEST_LIST_PREFIX", "Person", "Source", "SynthSpec", "annotation_text", "au_track", "draw_face",
    "expression_track", "invalid_run", "jitter", "make_person", "plan_release", "render_source", "ship_layout", "va_track",
    "voice", "write_avi", "write_face_pool", "write_labels", "write_mp4", "write_source", "write_test_lists",
]
