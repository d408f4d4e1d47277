"""A first end-to-end check of the harness."""

from tests.support import ev, installed, system


def test_primary_serves_expansion_in_central_mode_p1(net):
    net.given(installed(), system("se-primary", role="primary"), system("exp-1"))

    doc = net.status()

    assert doc["mode"]["effective"] == "central"
    assert [(p["kind"], p["target"], p["origin"]) for p in doc["providers"]] == [
        ("csta", "se-primary", "central"),
        ("dsml", "se-primary", "central"),
    ]
    assert doc["position"] == 3


def test_event_for_unknown_system_is_rejected_i6(net):
    net.given(installed())

    outcome = net.when(ev("failover", system="ghost"))

    assert (outcome.outcome, outcome.code) == ("rejected", "unknown_system")
