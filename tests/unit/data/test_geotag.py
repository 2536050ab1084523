import math

import pytest

from vpr.data.geotag import GeoTag, GeoTagError, format_filename, parse_filename

FULL = (
    "@0543256.08@4180623.52@10@S@37.77123456@-122.41234567@pano7@3@90.00@0.00@0.00@2.50"
    "@2017-01@0042_SanFrancisco@.jpg"
)


def test_parse_full_name():
    tag = parse_filename(f"/data/sf/{FULL}")
    assert tag.utm_east == pytest.approx(543256.08)
    assert tag.utm_north == pytest.approx(4180623.52)
    assert tag.utm_zone_number == 10 and tag.utm_zone_letter == "S"
    assert tag.latitude == pytest.approx(37.77123456)
    assert tag.longitude == pytest.approx(-122.41234567)
    assert tag.pano_id == "pano7" and tag.heading == 90.0 and tag.height == 2.5
    assert tag.timestamp == "2017-01" and tag.note == "0042_SanFrancisco"
    # The DESIGN's rule: index -2 of split('@') is the note.
    assert tag.note == FULL.split("@")[-2]


def test_round_trip_keeps_every_field():
    tag = GeoTag(utm_east=1.5, utm_north=-2.25, utm_zone_number=33, utm_zone_letter="T",
                 latitude=41.9, longitude=12.5, pano_id="p", tile_num="1", heading=359.5,
                 pitch=1.0, roll=-1.0, height=2.0, timestamp="2020", note="7_Rome")
    name = format_filename(tag)
    assert name.startswith("@") and name.endswith("@.jpg")
    assert len(name.split("@")) == 16
    assert parse_filename(name) == tag


def test_empty_fields_are_allowed():
    tag = parse_filename("@10.0@20.0@@@@@@@@@@@@@.jpg")
    assert (tag.utm_east, tag.utm_north) == (10.0, 20.0)
    assert tag.latitude is None and tag.note == "" and tag.utm_zone_number is None


def test_short_names_in_the_wild():
    assert parse_filename("@10@20@.jpg") == GeoTag(10.0, 20.0)
    tag = parse_filename("@10@20@33@place9@.png")
    assert tag.utm_zone_number == 33 and tag.note == "place9"


@pytest.mark.parametrize(
    "name, message",
    [
        ("photo.jpg", "no UTM fields"),
        ("@abc@20@@@@@@@@@@@@x@.jpg", "utm_east field is 'abc'"),
        ("@10@@@@@@@@@@@@@x@.jpg", "utm_north field is empty"),
        ("@10@nan@@@@@@@@@@@@x@.jpg", "finite"),
        ("@10@inf@@@@@@@@@@@@x@.jpg", "finite"),
        ("@10@20@ten@@@@@@@@@@@x@.jpg", "utm_zone_number"),
    ],
)
def test_bad_names_are_named_in_the_error(name, message):
    with pytest.raises(GeoTagError) as info:
        parse_filename(f"/some/folder/{name}")
    assert message in str(info.value)
    assert name in str(info.value)


@pytest.mark.parametrize("note", ["a@b", "a/b", "a\\b"])
def test_format_refuses_separators_in_a_field(note):
    with pytest.raises(GeoTagError, match="must not contain"):
        format_filename(GeoTag(1.0, 2.0, note=note))


def test_latitude_survives_at_centimetre_precision():
    tag = GeoTag(utm_east=0.0, utm_north=0.0, latitude=35.123456789, longitude=139.987654321)
    back = parse_filename(format_filename(tag))
    # 1e-8 degrees is about 1 mm.
    assert math.isclose(back.latitude, 35.123456789, abs_tol=1e-8)
    assert math.isclose(back.longitude, 139.987654321, abs_tol=1e-8)
