"""Pittsburgh 30k / 250k (NetVLAD splits) from the raw download.

Raw layout (as distributed by the NetVLAD authors)::

    RAW/000/ ... RAW/010/          database images, e.g. 000/000000_pitch1_yaw1.jpg
    RAW/queries_real/000/...       query images
    RAW/datasets/pitts30k_test.mat the split's dbStruct (also pitts250k_test.mat, *_val.mat)

Database paths in the ``.mat`` are relative to RAW, query paths to ``RAW/queries_real``.
Positives: within ``posDistThr`` (25 m). UTM zone 17T (Pittsburgh).
"""

from __future__ import annotations

import re
from pathlib import Path

from vpr.datatools.convert.coordinates import tag_from_utm
from vpr.datatools.convert.dbstruct import read_db_struct
from vpr.datatools.convert.plan import ConversionPlan, ConvertError, Item, first_existing

ZONE = (17, "T")
_VIEW = re.compile(r"^(?P<pano>[^_]+)_pitch(?P<pitch>\d+)_yaw(?P<yaw>\d+)$")


def _item(root: Path, relative: str, east: float, north: float) -> Item:
    stem = Path(relative).stem
    match = _VIEW.match(stem)
    fields: dict[str, str] = {"pano_id": stem}
    if match:
        # 24 yaws x 2 pitches per panorama: tile number as in the NetVLAD cut-outs.
        tile = (int(match["pitch"]) - 1) * 24 + int(match["yaw"]) - 1
        fields = {"pano_id": match["pano"], "tile_num": str(tile),
                  "note": f"pitch{match['pitch']}_yaw{match['yaw']}"}
    return Item(root / relative, tag_from_utm(east, north, *ZONE, **fields))


def pittsburgh_plan(raw: Path, protocol: str) -> ConversionPlan:
    """The plan of ``protocol`` (e.g. ``pitts30k_test``) from the raw Pittsburgh folder."""
    mat_name = f"{protocol}.mat"
    mat = first_existing([raw / "datasets" / mat_name, raw / mat_name],
                         f"the NetVLAD split file {mat_name} (from the Pittsburgh download)")
    struct = read_db_struct(mat)
    queries_root = raw / "queries_real"
    if not queries_root.is_dir():
        raise ConvertError(f"{queries_root}: folder not found; expected the Pittsburgh query "
                           "images (queries_real/)")
    database = [_item(raw, name, *utm) for name, utm in
                zip(struct.database_images, struct.database_utm)]
    queries = [_item(queries_root, name, *utm) for name, utm in
               zip(struct.query_images, struct.query_utm)]
    threshold = struct.pos_dist_thr or 25.0
    notes = [] if threshold == 25.0 else [f"posDistThr is {threshold:g} m in {mat.name}"]
    return ConversionPlan(protocol=protocol, database=database, queries=queries,
                          rule=f"{threshold:g} m", positive_dist_threshold=threshold,
                          notes=notes)
