"""Where the freely downloadable benchmarks come from, and how their files unpack.

The addresses are those of gmberton/VPR-datasets-downloader (``download_nordland.py``,
``download_sped.py``, ``download_amstertime.py``, ``download_eynsham.py``), which fetch them
without any form. Sizes and sha256 are not published upstream; the server's Content-Length
is checked instead.

Not here, on purpose: St Lucia (mega.nz, needs the Mega client and a video frame
extraction), SVOX (Google Drive), and the sets behind a request form (Pittsburgh, Tokyo 24/7,
MSLS, SF-XL). `vpr download NAME` prints where to get those.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOX = ("https://adelaideuniversity.app.box.com/index.php?rm=box_download_shared_file"
        "&shared_name=zkfk1akpbo5318fzqmtvlpp7030ex4up&file_id=")


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch into the raw folder.

    Attributes:
        url: its address.
        filename: the name it gets in the raw folder.
        unpack_into: a folder relative to the raw folder to unpack it into ("." for the raw
            folder itself), or None to keep it as it is.
        size: expected bytes, when published.
        sha256: expected digest, when published.
    """

    url: str
    filename: str
    unpack_into: str | None = None
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class RawSource:
    """The files of one raw download and what to unpack after them.

    Attributes:
        raw_folder: the folder name under the download root (shared by protocols that use
            the same raw data, e.g. every Nordland protocol).
        files: what to fetch, in order.
        nested: archives found inside the unpacked files, as (path relative to the raw
            folder, folder to unpack into).
        source: where the addresses come from.
    """

    raw_folder: str
    files: tuple[RemoteFile, ...]
    nested: tuple[tuple[str, str], ...] = ()
    source: str = ""


NORDLAND = RawSource(
    raw_folder="nordland_raw",
    files=(RemoteFile(_BOX + "f_1424421870101", "summer.tar.gz", unpack_into="."),
           RemoteFile(_BOX + "f_1521702837314", "winter.tar.gz", unpack_into="winter"),
           RemoteFile(_BOX + "f_1424408901067", "cleanImageNames.txt")),
    source="gmberton/VPR-datasets-downloader download_nordland.py (Patch-NetVLAD split)",
)

SOURCES: dict[str, RawSource] = {
    "nordland": NORDLAND,
    "nordland_2frames": NORDLAND,
    "nordland_1frame": NORDLAND,
    "nordland_swapped": NORDLAND,
    "sped": RawSource(
        raw_folder="sped_raw",
        files=(RemoteFile("https://surfdrive.surf.nl/files/index.php/s/sbZRXzYe3l0v67W/"
                          "download?path=%2F&files=SPEDTEST.zip", "SPEDTEST.zip",
                          unpack_into="."),),
        source="gmberton/VPR-datasets-downloader download_sped.py (the VPR-Bench share)",
    ),
    "eynsham": RawSource(
        raw_folder="eynsham_raw",
        files=(RemoteFile("https://zenodo.org/record/1243106/files/Eynsham.zip?download=1",
                          "Eynsham.zip", unpack_into="."),),
        source="gmberton/VPR-datasets-downloader download_eynsham.py (zenodo record 1243106)",
    ),
    "amstertime": RawSource(
        raw_folder="amstertime_raw",
        files=(RemoteFile("https://data.4tu.nl/ndownloader/items/"
                          "d2ee2551-986a-46bc-8540-b43f5b01ec4d/versions/4", "data.zip",
                          unpack_into="."),),
        nested=(("AmsterTime-v1.0.zip", "."),),
        source="gmberton/VPR-datasets-downloader download_amstertime.py (data.4tu.nl)",
    ),
}
