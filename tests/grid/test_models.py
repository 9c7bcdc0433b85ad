import pytest
from django.core.exceptions import ValidationError

from tests.conftest import make_organisation, make_pmu, make_stream, make_substation
from wams.grid.models import CommunicationPath, Pmu, StoragePolicy

pytestmark = pytest.mark.django_db


def test_duplicate_idcode_in_a_stream_is_rejected_with_a_message():
    pmu = make_pmu(idcode=7734)
    twin = Pmu(stream=pmu.stream, idcode=7734, station_name="TWIN", substation=pmu.substation, owner=pmu.owner)
    with pytest.raises(ValidationError) as error:
        twin.full_clean()
    assert "idcode" in error.value.message_dict


def test_same_idcode_in_another_stream_is_allowed():
    pmu = make_pmu(idcode=7734)
    other = make_stream(owner=pmu.owner)
    twin = Pmu(stream=other, idcode=7734, station_name="TWIN", substation=pmu.substation, owner=pmu.owner)
    twin.full_clean()


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_path_with_bad_port_is_rejected(port):
    stream = make_stream()
    path = CommunicationPath(stream=stream, name="fibre", host="127.0.0.1", port=port)
    with pytest.raises(ValidationError) as error:
        path.full_clean()
    assert "port" in error.value.message_dict


def test_hybrid_path_needs_a_udp_port():
    path = CommunicationPath(stream=make_stream(), name="lte", host="10.0.0.1", port=4712, transport="hybrid")
    with pytest.raises(ValidationError) as error:
        path.full_clean()
    assert "udp_port" in error.value.message_dict


@pytest.mark.parametrize(
    ("lat", "lon", "field"), [(91.0, 0.0, "latitude"), (-90.5, 0.0, "latitude"), (0.0, 181.0, "longitude")]
)
def test_substation_coordinates_out_of_range_are_rejected(lat, lon, field):
    substation = make_substation()
    substation.latitude, substation.longitude = lat, lon
    with pytest.raises(ValidationError) as error:
        substation.full_clean()
    assert field in error.value.message_dict


def test_reporting_rate_must_suit_the_nominal_frequency():
    stream = make_stream(reporting_rate_fps=30)
    pmu = make_pmu(stream=stream)
    pmu.nominal_frequency_hz = 50
    with pytest.raises(ValidationError) as error:
        pmu.full_clean()
    assert "30 fps" in str(error.value)


def test_storage_policy_without_any_limit_is_rejected():
    with pytest.raises(ValidationError):
        StoragePolicy(name="empty").full_clean()


def test_storage_policy_downsampling_needs_age_and_rate():
    with pytest.raises(ValidationError):
        StoragePolicy(name="half", downsample_after_days=7).full_clean()
    StoragePolicy(name="whole", downsample_after_days=7, downsample_rate_fps=1).full_clean()


def test_organisation_role_must_be_known():
    org = make_organisation()
    org.role = "bank"
    with pytest.raises(ValidationError):
        org.full_clean()
