"""The health check as the portal runs it: stored runs, the audit of the key read, the lockout
guard and the schedule. Against the local IAS stand-in over real TLS on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core import serializers

from certmgr.healthcheck import runner as healthchecks
from certmgr.healthcheck import schedule
from certmgr.models import Application, AuditEvent, HealthCheckRun
from tests import certs
from tests.test_keys_at_rest import secrets_of

# Checks run in this thread (workers=1) where the test transaction is visible; the pool has its
# own test below.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]


def manual(app) -> HealthCheckRun:
    return healthchecks.run_check(app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto")


def test_a_healthy_run_is_stored_with_steps_timings_and_plain_claims(checked_app, client_cert, ias):
    run = manual(checked_app)

    assert run.ok and run.failed_step == "" and run.code == ""
    assert [step["name"] for step in run.steps] == ["discovery", "token", "token_validation", "backend"]
    assert all(step["ok"] is True and step["duration_ms"] > 0 for step in run.steps)
    assert [step["status"] for step in run.steps] == [200, 200, None, 200]
    assert run.claims["sub"] == checked_app.client_id and run.claims["aud"] == checked_app.client_id
    assert run.claims["cnf"] == {"x5t#S256": checked_app.certificates.get().x5t_s256}
    assert run.certificate.fingerprint == client_cert.fingerprint
    checked_app.refresh_from_db()
    assert checked_app.last_check == run and not checked_app.checks_paused


def test_each_run_reads_the_key_once_and_says_so_in_the_audit_log(checked_app):
    manual(checked_app)
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ)
    assert event.actor_label == "otto"
    assert event.detail == "token-flow health check (manual)"
    assert event.certificate == checked_app.certificates.get()


def test_a_refused_certificate_is_stored_with_the_failed_step_and_its_diagnosis(checked_app, ias):
    ias.unregister(checked_app.client_id)

    run = manual(checked_app)

    assert not run.ok
    assert (run.failed_step, run.code) == ("token", "invalid_client")
    assert "not registered for client id" in run.diagnosis
    assert [step["ok"] for step in run.steps] == [True, False, None, None]


def test_the_access_token_and_the_key_appear_in_no_log_and_no_stored_row(
    checked_app, client_cert, ias, caplog
):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    manual(checked_app)
    ias.faults.audience = "someone-else"
    manual(checked_app)  # a failed validation keeps claims too
    assert len(ias.issued_tokens) == 2

    logged = "\n".join(record.getMessage() for record in caplog.records)
    stored = serializers.serialize(
        "json", [*HealthCheckRun.objects.all(), *Application.objects.all(), *AuditEvent.objects.all()]
    )
    for token in ias.issued_tokens:
        signature = token.rsplit(".", 1)[1]
        assert signature not in logged and signature not in stored
    for name, needle in secrets_of(client_cert).items():
        if name == "PEM label":
            continue
        assert needle.decode("latin-1") not in logged, name
        assert needle.decode("latin-1") not in stored, name


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tenant_url": ""}, "Set the IAS tenant URL"),
        ({"client_id": ""}, "Set the client id"),
    ],
)
def test_an_application_that_cannot_be_checked_says_why(checked_app, change, reason):
    Application.objects.filter(pk=checked_app.pk).update(**change)
    checked_app.refresh_from_db()
    with pytest.raises(healthchecks.NotCheckable, match=reason):
        manual(checked_app)
    assert not HealthCheckRun.objects.exists()


def test_a_certificate_without_its_key_cannot_be_checked(frontend_app, store, leaf, ias_settings):
    store(leaf.pem, frontend_app)
    assert "No active certificate with a stored private key" in healthchecks.why_not_checkable(frontend_app)


def test_the_check_uses_the_active_certificate_that_lasts_longest(checked_app, store, ias):
    later = certs.issue(
        "frontend-app (P000042)", key_slot=3, serial=0x4343, not_after=certs.EXPIRES + timedelta(days=90)
    )
    store(later.key_pem() + later.pem, checked_app, store_keys=True)
    ias.register(checked_app.client_id, later.pem)

    run = manual(checked_app)

    assert run.ok and run.certificate.fingerprint == later.fingerprint


# --- the lockout guard --------------------------------------------------------------------------


def test_two_refusals_in_a_row_pause_the_schedule_until_someone_runs_it_by_hand(
    checked_app, client_cert, ias
):
    ias.unregister(checked_app.client_id)
    assert schedule.run_due(workers=1)[0].code == "invalid_client"
    checked_app.refresh_from_db()
    assert not checked_app.checks_paused  # one refusal could be a blip

    with time_machine.travel(certs.MID_LIFE + timedelta(hours=1, minutes=1), tick=False):
        assert schedule.run_due(workers=1)[0].code == "invalid_client"
        checked_app.refresh_from_db()
        assert checked_app.checks_paused
    with time_machine.travel(certs.MID_LIFE + timedelta(hours=5), tick=False):
        assert schedule.run_due(workers=1) == []  # long due, but paused
    assert len(ias.token_requests) == 2  # IAS saw two failed logins, far from its limit of five

    ias.register(checked_app.client_id, client_cert.pem)
    assert manual(checked_app).ok
    checked_app.refresh_from_db()
    assert not checked_app.checks_paused


def test_a_refusal_after_a_success_does_not_pause(checked_app, ias):
    assert manual(checked_app).ok
    ias.unregister(checked_app.client_id)
    manual(checked_app)
    checked_app.refresh_from_db()
    assert not checked_app.checks_paused


# --- the schedule ---------------------------------------------------------------------------------


def test_a_due_application_is_checked_once_per_interval(checked_app, ias):
    Application.objects.filter(pk=checked_app.pk).update(check_interval_minutes=60)

    assert [run.application for run in schedule.run_due(workers=1)] == [checked_app]
    assert schedule.run_due(workers=1) == []  # the same instant: already claimed

    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=59), tick=False):
        assert schedule.run_due(workers=1) == []
    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=60), tick=False):
        assert len(schedule.run_due(workers=1)) == 1
    assert HealthCheckRun.objects.filter(trigger=HealthCheckRun.Trigger.SCHEDULED).count() == 2
    assert len(ias.token_requests) == 2


def test_a_claim_is_won_by_one_claimant_only(checked_app):
    # Two processes that both read the application as due: only the first UPDATE takes it.
    first, second = schedule.due().get(), schedule.due().get()
    assert schedule.claim(first, certs.MID_LIFE) is True
    assert schedule.claim(second, certs.MID_LIFE) is False
    checked_app.refresh_from_db()
    assert checked_app.next_check_at == certs.MID_LIFE + timedelta(minutes=checked_app.check_interval_minutes)
    assert list(schedule.due()) == []


@pytest.mark.django_db(transaction=True)  # commits are real here: what the flow sees is what others see
def test_a_scheduled_check_commits_its_claim_and_key_read_before_calling_ias(checked_app, ias, monkeypatch):
    from django.db import connection

    seen = []
    real = healthchecks.TokenFlow.get_token

    def token_step(flow):
        stored = Application.objects.get(pk=checked_app.pk)
        reads = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ, application=checked_app).count()
        seen.append((connection.in_atomic_block, stored.next_check_at is not None, reads))
        return real(flow)

    monkeypatch.setattr(healthchecks.TokenFlow, "get_token", token_step)

    [run] = schedule.run_due(workers=1)

    assert run.ok, run.diagnosis
    # No transaction waits on IAS; the claim and the audited key read are stored before IAS is asked.
    assert seen == [(False, True, 1)]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.HEALTH_CHECK_RUN).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("batch", "expected"), [(8, 2), (2, 3), (1, 4)])
def test_scheduled_checks_write_in_one_transaction_per_batch(
    checked_app, ias, store, monkeypatch, batch, expected
):
    from contextlib import contextmanager

    from django.db import connection, transaction

    checked_apps(ias, store, 2, serial=0x5100)
    transactions, outside = [], []
    real_atomic = transaction.atomic

    @contextmanager
    def counted(*args, **kwargs):
        if not connection.in_atomic_block:
            transactions.append(1)
        with real_atomic(*args, **kwargs):
            yield

    def spy(execute, sql, params, many, context):
        if not connection.in_atomic_block and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            outside.append(sql)
        return execute(sql, params, many, context)

    monkeypatch.setattr(schedule.transaction, "atomic", counted)
    monkeypatch.setattr(schedule, "CLAIM_BATCH", batch)
    with connection.execute_wrapper(spy):
        runs = schedule.run_due(workers=1)

    assert len(runs) == 3 and all(run.ok for run in runs), [run.diagnosis for run in runs]
    # A batch's claims and key reads in one, committed before IAS is asked, with the runs of the
    # batch before; the last batch's runs in one more: 3 applications in batches of 8, 2 or 1 take 2, 3 or 4.
    assert len(transactions) == expected
    assert outside == []
    assert AuditEvent.objects.filter(action=AuditEvent.Action.HEALTH_CHECK_RUN).count() == 3
    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ).count() == 3


@pytest.mark.django_db(transaction=True)
def test_an_application_deleted_while_its_check_runs_takes_no_other_run_with_it(
    checked_app, ias, store, monkeypatch
):
    """Its run cannot be stored (the application is gone at commit): the other runs of the batch
    are stored and audited one by one, and the key reads were committed before IAS was asked."""
    doomed, survivor = checked_apps(ias, store, 2, serial=0x5200)
    real_steps = healthchecks.Check.steps

    def steps(check):
        yield from real_steps(check)
        if check.application.pk == doomed.pk:
            Application.objects.filter(pk=doomed.pk).delete()

    monkeypatch.setattr(healthchecks.Check, "steps", steps)

    runs = schedule.run_due(workers=1)

    assert sorted(run.application.slug for run in runs) == sorted([checked_app.slug, survivor.slug])
    assert all(run.ok for run in runs), [run.diagnosis for run in runs]
    audited = AuditEvent.objects.filter(action=AuditEvent.Action.HEALTH_CHECK_RUN)
    assert sorted(event.application.slug for event in audited) == sorted([checked_app.slug, survivor.slug])
    assert AuditEvent.objects.filter(action=AuditEvent.Action.KEY_READ).count() == 3


def test_a_scheduled_check_of_an_unreadable_key_keeps_its_claim(checked_app, monkeypatch):
    from certmgr.inventory.keys import VaultError

    def unreadable(*args, **kwargs):
        raise VaultError("The stored private key does not belong to this certificate.")

    monkeypatch.setattr(healthchecks, "read_private_key", unreadable)

    with pytest.raises(VaultError):
        schedule.run_due(workers=1)

    checked_app.refresh_from_db()
    assert checked_app.next_check_at is not None  # claimed: not tried again before its interval
    assert list(schedule.due()) == []


def test_applications_that_cannot_be_checked_are_not_due(
    frontend_app, backend_app, store, leaf, ias_settings
):
    store(leaf.pem, frontend_app)  # no key
    assert list(schedule.due()) == []


def checked_apps(ias, store, count: int, *, serial: int) -> list[Application]:
    """``count`` more applications of the stand-in's tenant, each with a stored key and its
    certificate registered."""
    apps = []
    for n in range(count):
        app = Application.objects.create(
            name=f"App {n}", slug=f"app-{n}", tenant_url=ias.url, client_id=f"client-{n}", backend_url=""
        )
        item = certs.issue(f"app-{n}", key_slot=3, serial=serial + n)
        store(item.key_pem() + item.pem, app, store_keys=True)
        ias.register(app.client_id, item.pem)
        apps.append(app)
    return apps


def test_one_batch_gives_each_application_its_own_run_interval_and_pause(checked_app, ias, store):
    """Claims and health are written for the whole batch at once: each application still gets its
    own run as its health, its own interval as its next check, and only the one refused twice pauses."""
    refused, healthy = checked_apps(ias, store, 2, serial=0x5300)
    Application.objects.filter(pk=healthy.pk).update(check_interval_minutes=15)
    ias.unregister(refused.client_id)
    manual(refused)  # its first refusal, by hand

    runs = {run.application.slug: run for run in schedule.run_due(workers=1)}

    assert sorted(runs) == sorted([checked_app.slug, refused.slug, healthy.slug])
    for app in (checked_app, refused, healthy):
        app.refresh_from_db()
        assert app.last_check == runs[app.slug]
    assert runs[refused.slug].code == "invalid_client" and refused.checks_paused
    assert runs[healthy.slug].ok and not healthy.checks_paused
    assert runs[checked_app.slug].ok and not checked_app.checks_paused
    assert healthy.next_check_at == certs.MID_LIFE + timedelta(minutes=15)
    assert checked_app.next_check_at == certs.MID_LIFE + timedelta(minutes=checked_app.check_interval_minutes)
    assert checked_app.check_interval_minutes != 15


@pytest.mark.django_db(transaction=True)  # the pool's threads have connections of their own
def test_run_due_checks_several_applications_with_a_pool(checked_app, ias, store, owner):
    apps = [checked_app, *checked_apps(ias, store, 3, serial=0x5000)]

    runs = schedule.run_due(workers=4)

    assert sorted(run.application.slug for run in runs) == sorted(app.slug for app in apps)
    assert all(run.ok for run in runs), [run.diagnosis for run in runs]
    assert sorted(request.client_id for request in ias.token_requests) == sorted(
        app.client_id for app in apps
    )


@pytest.mark.django_db(transaction=True)
def test_the_pools_batches_shrink_to_single_applications_as_the_list_runs_out(
    checked_app, ias, store, monkeypatch
):
    """No thread claims more than CLAIM_BATCH at once (what a dying instance can leave unchecked);
    its share of what is left otherwise, so that the last claims are of one application each and
    no thread is still checking a batch while the others have ended."""
    apps = [checked_app, *checked_apps(ias, store, 11, serial=0x5400)]
    monkeypatch.setattr(schedule, "CLAIM_BATCH", 4)
    claimed, real_send_claims = [], schedule._send_claims

    def spy(applications, now):
        if applications:
            claimed.append(len(applications))
        return real_send_claims(applications, now)

    monkeypatch.setattr(schedule, "_send_claims", spy)

    runs = schedule.run_due(workers=2)

    assert sorted(run.application.slug for run in runs) == sorted(app.slug for app in apps)
    assert all(run.ok for run in runs), [run.diagnosis for run in runs]
    # 12 left for 2 threads: batches of 4 (the cap) while a thread's share is larger, then of the
    # share (4 left: 2), down to 1.
    assert sorted(claimed, reverse=True) == [4, 4, 2, 1, 1]


# --- a chosen certificate: the staged one, proven before the switch -----------------------------


def test_a_staged_certificate_is_checked_without_becoming_the_applications_health(
    checked_app, staged_cert, client_cert
):
    in_use = manual(checked_app)
    staged_run = healthchecks.run_check(
        checked_app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto", certificate=staged_cert
    )

    assert staged_run.ok and staged_run.certificate == staged_cert
    assert staged_run.claims["cnf"] == {"x5t#S256": staged_cert.x5t_s256}
    checked_app.refresh_from_db()
    assert checked_app.last_check == in_use  # the dashboard still shows the certificate in use
    assert checked_app.certificates.get(lifecycle="active").fingerprint == client_cert.fingerprint
    audit = AuditEvent.objects.filter(action=AuditEvent.Action.HEALTH_CHECK_RUN).order_by("pk")
    assert [event.detail for event in audit] == [
        "manual: healthy",
        f"manual with the staged certificate {staged_cert.fingerprint[:16]}…: healthy",
    ]


def test_a_failing_staged_check_neither_notifies_nor_pauses_the_schedule(checked_app, staged_cert, ias):
    manual(checked_app)
    ias.unregister(checked_app.client_id)
    ias.register(checked_app.client_id, checked_app.certificates.get(lifecycle="active").pem)
    for _ in range(2):  # two refusals in a row would pause the schedule of the certificate in use
        run = healthchecks.run_check(
            checked_app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto", certificate=staged_cert
        )
        assert (run.ok, run.code) == (False, "invalid_client")

    checked_app.refresh_from_db()
    assert checked_app.last_check.ok and not checked_app.checks_paused


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lifecycle": "retired"}, "The certificate is retired"),
        ({"encrypted_private_key": None}, "holds no private key for this certificate"),
    ],
)
def test_a_certificate_that_cannot_be_checked_says_why(checked_app, staged_cert, change, reason):
    for name, value in change.items():
        setattr(staged_cert, name, value)
    staged_cert.save()

    with pytest.raises(healthchecks.NotCheckable, match=reason):
        healthchecks.run_check(
            checked_app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto", certificate=staged_cert
        )


def test_a_certificate_of_another_application_is_not_checked(checked_app, backend_app, store):
    other = certs.issue("backend-app", key_slot=5, serial=0x5151)
    foreign = store(other.key_pem() + other.pem, backend_app, store_keys=True)

    with pytest.raises(healthchecks.NotCheckable, match="belongs to another application"):
        healthchecks.run_check(
            checked_app, trigger=HealthCheckRun.Trigger.MANUAL, actor_label="otto", certificate=foreign
        )


def test_the_applications_app_tid_reaches_a_tenant_that_requires_it(checked_app, ias):
    ias.configure_client(checked_app.client_id, require_app_tid=True)
    refused = manual(checked_app)
    checked_app.app_tid = ias.app_tid  # as a service key or Kubernetes Secret import fills it
    checked_app.save()

    healthy = manual(checked_app)

    assert (refused.ok, refused.code) == (False, "invalid_request")
    assert healthy.ok, healthy.diagnosis
    assert [r.app_tid for r in ias.token_requests] == [None, ias.app_tid]
