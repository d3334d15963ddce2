"""Every volume rule, with the message a user sees."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.errors import Conflict, RuleBroken
from dashboard.models import Organization, Via
from dashboard.services import Actor
from volumes.models import Volume
from volumes.rules import parse_capacity, validate_slug
from volumes.services import volume_create, volume_delete

pytestmark = pytest.mark.django_db
actor = Actor(via=Via.API)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        (
            "My-Project",
            'Slug "My-Project" may contain only lowercase letters, digits, _ and -; "M" is not allowed',
        ),
        ("cache@v2", '"@" is not allowed'),
        ("a" * 31, 'Slug "' + "a" * 31 + '" is 31 characters long; the most is 30'),
        ("-cache", "must start with a letter or a digit"),
        ("_cache", "must start with a letter or a digit"),
        ("", "A volume needs a slug"),
    ],
)
def test_it_refuses_a_bad_slug_naming_the_rule(slug: str, message: str) -> None:
    with pytest.raises(RuleBroken, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        validate_slug(slug)
    assert info.value.field == "slug"


@pytest.mark.parametrize("slug", ["a", "my_project", "cache-v2", "0day", "a" * 30])
def test_it_takes_a_good_slug(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GB", 2_000_000_000),
        ("1GiB", 1_073_741_824),
        ("300MB", 300_000_000),
        ("512 MiB", 536_870_912),
        ("1.5GB", 1_500_000_000),
        ("1tb", 1_000_000_000_000),
        (5_000_000_000, 5_000_000_000),
        ("4000000000", 4_000_000_000),
        (None, 1_000_000_000),
    ],
)
def test_it_parses_capacities_in_decimal_and_binary_units(text: str | int | None, size: int) -> None:
    assert parse_capacity(text) == size


@pytest.mark.parametrize("text", ["2XB", "GB", "-1GB", "1.5", "two gigs", "0"])
def test_it_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(RuleBroken) as info:
        parse_capacity(text)
    assert info.value.field == "capacity"


@pytest.mark.parametrize(
    ("capacity", "message"),
    [
        ("500GB", "Capacity 500 GB is above the largest volume in ord (100 GB)"),
        ("100MB", "Capacity 100 MB is below the smallest volume in ord (300 MB)"),
    ],
)
def test_it_keeps_capacity_inside_the_regions_limits(
    org: Organization, regions: list[Any], capacity: str, message: str
) -> None:
    with pytest.raises(RuleBroken, match=message.replace("(", r"\(").replace(")", r"\)")):
        volume_create(org=org, slug="big", region="ord", capacity=capacity, actor=actor)
    assert not Volume.objects.exists()


def test_it_names_the_regions_when_one_does_not_exist(org: Organization, regions: list[Any]) -> None:
    with pytest.raises(RuleBroken, match='There is no region "mars"; the regions are ams, iad, lax, ord'):
        volume_create(org=org, slug="x", region="mars", capacity="1GB", actor=actor)
    assert not Volume.objects.exists()


def test_it_stores_exact_sizes(org: Organization, regions: list[Any]) -> None:
    two = volume_create(org=org, slug="two", region="ord", capacity="2GB", actor=actor)
    gib = volume_create(org=org, slug="gib", region="ord", capacity="1GiB", actor=actor)
    default = volume_create(org=org, slug="default", region="ams", actor=actor)
    assert (two.capacity, gib.capacity, default.capacity) == (2_000_000_000, 1_073_741_824, 1_000_000_000)
    assert two.node.region.code == "ord" and default.node.name == "ams-1"


def test_a_slug_is_unique_among_live_volumes_of_one_organization(
    org: Organization, other_org: Organization, regions: list[Any]
) -> None:
    volume_create(org=org, slug="data", region="ord", actor=actor)
    with pytest.raises(Conflict, match='A volume named "data" already exists'):
        volume_create(org=org, slug="data", region="iad", actor=actor)
    volume_create(org=other_org, slug="data", region="ord", actor=actor)  # another team's namespace
    assert Volume.objects.filter(slug="data").count() == 2


def test_deleting_frees_the_slug(org: Organization, regions: list[Any]) -> None:
    first = volume_create(org=org, slug="data", region="ord", actor=actor)
    volume_delete(org=org, id_or_slug="data", actor=actor)
    second = volume_create(org=org, slug="data", region="ord", actor=actor)
    assert first.id != second.id


def test_placement_picks_the_node_with_the_most_room(org: Organization, regions: list[Any]) -> None:
    from volumes.models import Node, Region

    ord_region = Region.objects.get(code="ord")
    roomy = Node.objects.create(name="ord-2", region=ord_region, data_root="/tmp/x", capacity=10**15)
    assert volume_create(org=org, slug="a", region="ord", actor=actor).node == roomy
    roomy.is_active = False
    roomy.save()
    assert volume_create(org=org, slug="b", region="ord", actor=actor).node.name == "ord-1"
