"""Distances shown to users: WGS84 geodesics, in any zone; in `vpr locate` text and JSON."""

from __future__ import annotations

import json

import pytest
from helpers.places import FAR_CITY_LATLON

from vpr.locate import locate
from vpr.locate.geodesy import format_distance, geodesic_m, latlon_of

# WGS84: equatorial radius a, and the quarter meridian (equator to pole along a meridian).
A = 6_378_137.0
QUARTER_MERIDIAN = 10_001_965.729


def test_geodesic_distances_checked_by_hand():
    # Along the equator a geodesic is an arc of the equator: a * 1 degree = 111.32 km.
    one_degree = A * 3.141592653589793 / 180
    assert one_degree == pytest.approx(111_319.49, abs=0.01)
    assert geodesic_m(0, 0, 0, 1) == pytest.approx(one_degree, abs=1e-3)
    # Across the antimeridian, the same degree.
    assert geodesic_m(0, 179.5, 0, -179.5) == pytest.approx(one_degree, abs=1e-3)
    # Pole to pole: two quarter meridians.
    assert geodesic_m(90, 0, -90, 0) == pytest.approx(2 * QUARTER_MERIDIAN, abs=0.01)
    # Antipodes on the equator: the shortest way is over a pole (the Earth is flattened),
    # not half the equator (20,037.5 km); Vincenty's iteration fails here.
    assert geodesic_m(0, 0, 0, 180) == pytest.approx(2 * QUARTER_MERIDIAN, abs=0.01)
    assert geodesic_m(0, 10, 0, 10) == 0.0
    with pytest.raises(ValueError, match="latitude"):
        geodesic_m(91, 0, 0, 0)
    with pytest.raises(ValueError, match="finite"):
        geodesic_m(float("nan"), 0, 0, 0)


def test_latlon_from_utm_when_not_recorded_and_formatting():
    assert latlon_of(45.0, 7.0, 1, 2, 32, "T") == (45.0, 7.0)
    # 500 km east at the equator, zone 31N: the zone's central meridian, 3 degrees east.
    latitude, longitude = latlon_of(None, None, 500_000.0, 0.0, 31, "N")
    assert (latitude, longitude) == pytest.approx((0.0, 3.0), abs=1e-9)
    assert latlon_of(None, None, 500_000.0, 0.0, None, "") is None
    assert format_distance(None) == "?"
    assert format_distance(12.4) == "12 m"
    assert format_distance(999.4) == "999 m"
    assert format_distance(1000) == "1.00 km"
    assert format_distance(1_543_210.0) == "1,543.21 km"


def test_a_match_in_another_zone_has_its_distance_everywhere(two_city_world, capsys):
    from helpers.cli import run_cli

    photo = sorted(p for p in two_city_world["database"].iterdir() if "place0_0" in p.name)[0]
    [result] = locate(photo, two_city_world["index"], top_k=4, device="cpu")
    assert [m.in_cluster for m in result.matches] == [True, True, True, False]
    far = result.matches[3]
    assert far.path == str(two_city_world["far"].resolve())
    assert far.utm_zone_number == 29 and result.utm_zone_number == 32
    expected = geodesic_m(result.latitude, result.longitude, *FAR_CITY_LATLON)
    # Turin to Lisbon: about 1,500 km (great circle on a sphere of 6371 km: 1,48x km).
    assert 1_400_000 < expected < 1_600_000
    assert far.distance_to_prediction_m == pytest.approx(expected, abs=0.01)
    # Near matches: the geodesic agrees with UTM metres (same zone) to the millimetre scale.
    near = result.matches[1]
    utm_metres = ((near.utm_east - result.utm_east) ** 2
                  + (near.utm_north - result.utm_north) ** 2) ** 0.5
    assert near.distance_to_prediction_m == pytest.approx(utm_metres, rel=2e-3)
    arguments = ["locate", str(photo), "--index", str(two_city_world["index"]), "--top_k", "4",
                 "--device", "cpu"]
    assert run_cli("locate", arguments + ["--json"]) == 0
    [printed] = json.loads(capsys.readouterr().out)
    assert printed["matches"][3]["distance_to_prediction_m"] == pytest.approx(expected, abs=0.01)
    assert run_cli("locate", arguments) == 0
    text = capsys.readouterr().out
    assert format_distance(expected) in text and " km" in text and "?" not in text
