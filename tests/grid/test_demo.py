import pytest
from django.core.management import call_command

from wams.grid import demo
from wams.grid.models import Bus, Channel, CommunicationPath, ControllableDevice, Line, Pmu, Stream, Substation

pytestmark = pytest.mark.django_db


def counts():
    return [
        m.objects.count() for m in (Substation, Bus, Line, Stream, Pmu, Channel, CommunicationPath, ControllableDevice)
    ]


def test_demo_topology_loads_twice_without_duplicates():
    call_command("load_demo", "--no-accounts")
    first = counts()
    call_command("load_demo", "--no-accounts")
    assert counts() == first
    assert Bus.objects.count() == 39
    assert Line.objects.count() == 46


def test_demo_topology_has_pmus_at_both_ends_of_every_corridor():
    call_command("load_demo", "--no-accounts")
    assert Pmu.objects.count() >= 10
    pmu_buses = set(Pmu.objects.values_list("bus__number", flat=True))
    for _name, a, b, _limit in demo.CORRIDORS:
        assert {a, b} <= pmu_buses


def test_every_demo_stream_has_two_paths_and_every_pmu_a_voltage_channel():
    call_command("load_demo", "--no-accounts")
    for stream in Stream.objects.all():
        assert stream.paths.count() == 2
    for pmu in Pmu.objects.all():
        assert pmu.channels.filter(measures="bus_voltage", order=0).exists()


def test_demo_objects_pass_model_validation():
    call_command("load_demo", "--no-accounts")
    for model in (Substation, Bus, Line, Stream, Pmu, Channel, CommunicationPath, ControllableDevice):
        for obj in model.objects.all():
            obj.full_clean()


def test_demo_accounts_are_created_with_roles(capsys):
    call_command("load_demo", "--password", "demo-pass-1")
    out = capsys.readouterr().out
    assert "operator" in out and "demo-pass-1" in out
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    user = authenticate(RequestFactory().post("/accounts/login/"), username="operator", password="demo-pass-1")
    assert user is not None
    assert user.groups.filter(name="operator").exists()
    assert user.membership.organisation.code == "netso"
