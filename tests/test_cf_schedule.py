"""The scheduled sync: each foundation is claimed with a conditional UPDATE, so any number of
workers read the landscape once per CERTMGR_CF_SYNC_MINUTES; a failing sync is recorded and the
worker goes on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from certmgr.landscape import scan
from certmgr.models import Binding, Foundry
from tests import certs

pytestmark = pytest.mark.django_db


def test_two_workers_claim_a_due_foundation_once(cf):
    foundry = scan.configured_foundry()
    first, second = Foundry.objects.get(pk=foundry.pk), Foundry.objects.get(pk=foundry.pk)  # two processes

    assert [scan.claim(first, certs.MID_LIFE), scan.claim(second, certs.MID_LIFE)] == [True, False]
    assert Foundry.objects.get().next_sync_at == certs.MID_LIFE + timedelta(minutes=60)


def test_the_worker_syncs_when_due_and_not_before(cf, frontend_app, capsys, settings):
    settings.CERTMGR_CF_SYNC_MINUTES = 30

    call_command("worker", "--once")
    assert "cf sync of 127.0.0.1:" in capsys.readouterr().out
    assert Binding.objects.count() == 4
    logins = len([c for c in cf.calls if c.server == "uaa"])

    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=29), tick=False):
        call_command("worker", "--once")
    assert len([c for c in cf.calls if c.server == "uaa"]) == logins  # not due: nothing asked

    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=31), tick=False):
        call_command("worker", "--once")
    assert len([c for c in cf.calls if c.server == "uaa"]) == logins + 1


def test_a_failing_scheduled_sync_is_recorded_and_the_worker_goes_on(cf, caplog):
    cf.faults.api_status = 503

    with caplog.at_level(logging.WARNING):
        call_command("worker", "--once")  # no CommandError: the other rounds and the next interval go on

    foundry = Foundry.objects.get()
    assert foundry.last_sync_ok is False
    assert (
        foundry.last_sync_error
        == "The Cloud Foundry API answered 503 (UnknownError) for /v3/service_offerings."
    )
    assert foundry.next_sync_at == certs.MID_LIFE + timedelta(minutes=60)
    assert "cf sync of https://127.0.0.1:" in caplog.text and "failed (api_error)" in caplog.text


def test_without_a_cloud_foundry_api_the_round_does_nothing(settings, django_assert_num_queries):
    settings.CERTMGR_CF_API = ""

    with django_assert_num_queries(0):
        assert scan.sync_due() is None
