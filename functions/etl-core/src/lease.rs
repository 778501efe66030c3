//! The (pipeline, logical date) lease in `etl.leases`: one execution runs a date at a time.
//!
//! A lease row rather than an advisory lock: every stage is a Lambda invocation of its own,
//! with its own connection, and a run spans several of them (and the waits between them), so
//! no session- or transaction-scoped lock can cover it. The row names its owner (the
//! execution) and an expiry: the first stage of a run for its date takes it, every later stage
//! of the same execution renews it (and keeps renewing while it works, see [`hold`]),
//! `record-run` releases it. A second execution is refused with [`LeaseError::Held`]
//! (`Retryable`). An owner that died stops renewing; once its lease has expired the next
//! execution takes the date over and marks the dead owner's running attempts abandoned.
//!
//! A stage invoked outside any execution (`etl invoke`, a test) takes the lease for itself,
//! under a label of its own, and gives it back when it ends, in the statement that closes its
//! ledger row ([`crate::ledger::tracked`]). So does work an execution does on another date
//! than its own (`hr-export` refreshing a later date's snapshot), under a label named after
//! the execution and the work ([`work_label`]): an invocation ended mid-way (a Lambda timeout)
//! leaves that lease held until it expires, and the same work retried by the same execution
//! takes it back instead of being refused by its own dead attempt.
//!
//! The expiry is `etl.lease_policy.ttl` (an interval, [`DEFAULT_TTL`] unless changed): one
//! value every function reads, changed without a deploy
//! (`UPDATE etl.lease_policy SET ttl = '45 min'`). A table rather than a custom PostgreSQL
//! setting: `ALTER DATABASE … SET` of one needs a superuser, which RDS does not give.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clients::Context;
use crate::error::{LeaseError, StageError};
use crate::logical_date::LogicalDate;

/// The expiry the migration sets, and the fallback of `ttl!`: longer than the longest wait
/// between two stages of a run (a `Retry` of `RetryIntervalSeconds`, 300 s by default, plus cold starts).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

/// The lease's time to live, in SQL: the policy, else the default. A macro so that the
/// statements below stay fixed text.
macro_rules! ttl {
    () => {
        "COALESCE((SELECT ttl FROM etl.lease_policy), interval '30 minutes')"
    };
}

/// Renewal stops being hammered however short a test makes the expiry.
const MIN_RENEW_PERIOD: Duration = Duration::from_millis(100);

/// A lease this process holds (or held) for one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub pipeline: String,
    pub date: LogicalDate,
    /// The execution name, or the direct invocation's label.
    pub owner: String,
    pub execution: Option<String>,
    /// What the expiry was when taken: renewals come every third of it.
    pub ttl: Duration,
}

impl Lease {
    /// Held for one stage only, and given back when it ends: taken outside any execution, or
    /// under a [`work_label`].
    pub fn is_direct(&self) -> bool {
        self.execution.is_none()
    }
}

/// The lease row as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub execution: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub released: bool,
}

impl Holder {
    /// How errors and reasons name it.
    pub fn describe(&self) -> String {
        describe(&self.owner, self.execution.as_deref())
    }
}

/// What a stage may do with the date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Free (never held, released) or expired: take it. `expired` is the holder whose lease
    /// ran out, whose running attempts are now abandoned.
    Take { expired: Option<Holder> },
    /// Ours already (a later stage, or a retry): push the expiry back.
    Renew,
    /// Someone else's, still valid.
    Refuse(Holder),
}

/// Pure: who gets the date. Our own lease is renewed even when it has just expired, as long
/// as nobody took it meanwhile.
pub fn decide(current: Option<&Holder>, owner: &str, now: DateTime<Utc>) -> Decision {
    match current {
        None => Decision::Take { expired: None },
        Some(holder) if holder.released => Decision::Take { expired: None },
        Some(holder) if holder.owner == owner => Decision::Renew,
        Some(holder) if holder.expires_at <= now => Decision::Take {
            expired: Some(holder.clone()),
        },
        Some(holder) => Decision::Refuse(holder.clone()),
    }
}

/// `execution NAME`, `a direct invocation (LABEL)`, or a [`work_label`] as it is.
pub fn describe(owner: &str, execution: Option<&str>) -> String {
    match execution {
        Some(name) => format!("execution {name}"),
        None if owner.starts_with(DIRECT_PREFIX) => format!("a direct invocation ({owner})"),
        None => owner.to_string(),
    }
}

/// Why a dead holder's attempt was abandoned.
pub fn takeover_reason(expired: &Holder, taker: &str) -> String {
    format!(
        "lease expired at {} (held by {}); taken over by {taker}",
        expired.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
        expired.describe()
    )
}

/// How often a working stage renews: a third of the expiry, so two renewals may fail (a
/// blip) before the lease runs out.
pub fn renew_period(ttl: Duration) -> Duration {
    (ttl / 3).max(MIN_RENEW_PERIOD)
}

/// How the labels of direct invocations start (see [`direct_owner`]).
const DIRECT_PREFIX: &str = "direct-";

/// A label no other direct invocation uses, in this process or another.
fn direct_owner() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{DIRECT_PREFIX}{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The owner of a lease `execution` takes for `work` on a date other than its own (held for
/// that work only, as a direct invocation's): the same for every attempt of the same work by
/// the same execution, so that a retry renews what an attempt ended mid-way left held, and
/// different for other work or another execution, which are refused until it expires.
pub fn work_label(execution: &str, work: &str) -> String {
    format!("{work} for execution {execution}")
}

const SELECT_FOR_UPDATE: &str = "
    SELECT owner, execution, expires_at, released_at IS NOT NULL, now()
      FROM etl.leases WHERE pipeline = $1 AND logical_date = $2
       FOR UPDATE";

const INSERT: &str = concat!(
    "INSERT INTO etl.leases (pipeline, logical_date, owner, execution, expires_at)
     VALUES ($1, $2, $3, $4, now() + ",
    ttl!(),
    ")
     ON CONFLICT (pipeline, logical_date) DO NOTHING
     RETURNING extract(epoch FROM expires_at - now())::float8"
);

const TAKE: &str = concat!(
    "UPDATE etl.leases
        SET owner = $3, execution = $4, acquired_at = now(), renewed_at = now(),
            released_at = NULL, expires_at = now() + ",
    ttl!(),
    "
      WHERE pipeline = $1 AND logical_date = $2
     RETURNING extract(epoch FROM expires_at - now())::float8"
);

const RENEW: &str = concat!(
    "UPDATE etl.leases SET renewed_at = now(), expires_at = now() + ",
    ttl!(),
    "
      WHERE pipeline = $1 AND logical_date = $2 AND owner = $3 AND released_at IS NULL
     RETURNING extract(epoch FROM expires_at - now())::float8"
);

const ABANDON_EXPIRED: &str = "
    UPDATE etl.runs
       SET status = 'abandoned', finished_at = now(), error_cause = $4
     WHERE pipeline = $1 AND logical_date = $2 AND status = 'running'
       AND execution IS NOT DISTINCT FROM $3";

const RELEASE: &str = "
    UPDATE etl.leases SET released_at = now(), expires_at = now()
     WHERE pipeline = $1 AND logical_date = $2 AND owner = $3 AND released_at IS NULL";

/// Takes or renews the date's lease for `execution` (a label of its own without one), or
/// fails with [`LeaseError::Held`]. Taking over an expired lease marks the dead holder's
/// running attempts abandoned, in the same transaction.
pub async fn acquire(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    execution: Option<&str>,
) -> Result<Lease, StageError> {
    let owner = execution.map_or_else(direct_owner, str::to_string);
    take(ctx, pipeline, date, owner, execution).await
}

/// [`acquire`] for work under a [`work_label`]: held as a direct invocation's lease (for the
/// work only, given back when it ends), renewed rather than refused when the label holds it.
pub async fn acquire_for_work(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    label: &str,
) -> Result<Lease, StageError> {
    take(ctx, pipeline, date, label.to_string(), None).await
}

async fn take(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    owner: String,
    execution: Option<&str>,
) -> Result<Lease, StageError> {
    let day = date.date();
    let mut client = ctx.postgres().await?;
    let tx = client.transaction().await.map_err(StageError::postgres)?;
    let pg = StageError::postgres;
    let mut current = holder(&tx, pipeline, date).await?;
    if current.is_none() {
        if let Some(row) = tx
            .query_opt(INSERT, &[&pipeline, &day, &owner, &execution])
            .await
            .map_err(pg)?
        {
            tx.commit().await.map_err(pg)?;
            return Ok(lease(pipeline, date, owner, execution, row.get(0)));
        }
        // Another stage inserted it first: its row is committed and locked for us now.
        current = holder(&tx, pipeline, date).await?;
    }
    let (current, now) = current.map_or((None, Utc::now()), |(h, now)| (Some(h), now));
    let ttl: f64 = match decide(current.as_ref(), &owner, now) {
        Decision::Refuse(holder) => {
            return Err(LeaseError::Held {
                pipeline: pipeline.to_string(),
                date: day,
                holder: holder.describe(),
                expires_at: holder.expires_at,
            }
            .into())
        }
        Decision::Renew => tx
            .query_one(RENEW, &[&pipeline, &day, &owner])
            .await
            .map_err(pg)?
            .get(0),
        Decision::Take { expired } => {
            let ttl = tx
                .query_one(TAKE, &[&pipeline, &day, &owner, &execution])
                .await
                .map_err(pg)?
                .get(0);
            if let Some(expired) = expired {
                let reason = takeover_reason(&expired, &describe(&owner, execution));
                let abandoned = tx
                    .execute(
                        ABANDON_EXPIRED,
                        &[&pipeline, &day, &expired.execution, &reason],
                    )
                    .await
                    .map_err(pg)?;
                tracing::warn!(pipeline, %date, abandoned, %reason, "lease taken over");
            }
            ttl
        }
    };
    tx.commit().await.map_err(pg)?;
    Ok(lease(pipeline, date, owner, execution, ttl))
}

async fn holder(
    tx: &tokio_postgres::Transaction<'_>,
    pipeline: &str,
    date: LogicalDate,
) -> Result<Option<(Holder, DateTime<Utc>)>, StageError> {
    let row = tx
        .query_opt(SELECT_FOR_UPDATE, &[&pipeline, &date.date()])
        .await
        .map_err(StageError::postgres)?;
    Ok(row.map(|r| {
        (
            Holder {
                owner: r.get(0),
                execution: r.get(1),
                expires_at: r.get(2),
                released: r.get(3),
            },
            r.get(4),
        )
    }))
}

fn lease(
    pipeline: &str,
    date: LogicalDate,
    owner: String,
    execution: Option<&str>,
    ttl_seconds: f64,
) -> Lease {
    Lease {
        pipeline: pipeline.to_string(),
        date,
        owner,
        execution: execution.map(str::to_string),
        // A negative or absurd setting still leaves a usable renewal period.
        ttl: Duration::try_from_secs_f64(ttl_seconds).unwrap_or(MIN_RENEW_PERIOD),
    }
}

/// Pushes the expiry back. False when the lease is no longer ours (released, or expired and
/// taken over).
pub async fn renew(ctx: &Context, lease: &Lease) -> Result<bool, StageError> {
    let client = ctx.postgres().await?;
    let row = client
        .query_opt(RENEW, &[&lease.pipeline, &lease.date.date(), &lease.owner])
        .await
        .map_err(StageError::postgres)?;
    Ok(row.is_some())
}

/// Gives the lease back, if it is still ours.
pub async fn release(ctx: &Context, lease: &Lease) -> Result<(), StageError> {
    let client = ctx.postgres().await?;
    client
        .execute(
            RELEASE,
            &[&lease.pipeline, &lease.date.date(), &lease.owner],
        )
        .await
        .map_err(StageError::postgres)?;
    Ok(())
}

/// Gives a direct invocation's lease back (an execution's is released by `record-run`):
/// what closing the ledger row did not do (see [`crate::ledger::tracked`]). Best effort: a
/// lease not given back expires on its own.
pub async fn release_if_direct(ctx: &Context, lease: &Lease) {
    if lease.is_direct() {
        if let Err(err) = release(ctx, lease).await {
            tracing::warn!(error = %err, "could not release the lease");
        }
    }
}

/// `work` under the date's lease, for a stage without a ledger row of its own (the first
/// stage of a run that only plans): [`acquire`], [`hold`], [`release_if_direct`].
pub async fn with_lease<O, F>(
    ctx: &Context,
    pipeline: &str,
    date: LogicalDate,
    execution: Option<&str>,
    work: F,
) -> Result<O, StageError>
where
    F: Future<Output = Result<O, StageError>>,
{
    let lease = acquire(ctx, pipeline, date, execution).await?;
    let result = hold(ctx, &lease, work).await;
    release_if_direct(ctx, &lease).await;
    result
}

/// Runs `work` while renewing the lease every [`renew_period`]: a stage longer than the
/// expiry keeps its date. If the lease is lost (it expired, say during a long database
/// outage, and another execution took the date), the work is dropped, which rolls back its
/// open transaction, and the stage fails with [`LeaseError::Lost`]. A renewal that fails
/// for another reason is logged and tried again at the next period.
pub async fn hold<O, F>(ctx: &Context, lease: &Lease, work: F) -> Result<O, StageError>
where
    F: Future<Output = Result<O, StageError>>,
{
    let keep_alive = async {
        let period = renew_period(lease.ttl);
        loop {
            tokio::time::sleep(period).await;
            match renew(ctx, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    return LeaseError::Lost {
                        pipeline: lease.pipeline.clone(),
                        date: lease.date.date(),
                        owner: describe(&lease.owner, lease.execution.as_deref()),
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not renew the lease"),
            }
        }
    };
    tokio::select! {
        biased;
        result = work => result,
        lost = keep_alive => Err(lost.into()),
    }
}

/// Marks abandoned every running attempt (of `pipeline`, or of all) that no valid lease
/// covers any more: its lease expired, was released, or belongs to another execution now.
/// The attempts of a process that died with nobody coming after it end here, when the
/// ledger is next read (`etl runs`, `plan-dates`). Returns how many.
pub async fn reap(ctx: &Context, pipeline: Option<&str>) -> Result<u64, StageError> {
    let client = ctx.postgres().await?;
    client
        .execute(REAP, &[&pipeline])
        .await
        .map_err(StageError::postgres)
}

const REAP: &str = "
    UPDATE etl.runs r
       SET status = 'abandoned', finished_at = now(), error_cause = dead.reason
      FROM (SELECT x.run_id,
                   CASE WHEN l.pipeline IS NULL
                          THEN 'no lease covers this attempt: its process died'
                        WHEN l.released_at IS NOT NULL
                          THEN 'the lease was released at ' || to_char(l.released_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC while this attempt was still running: its process died'
                        WHEN l.execution IS DISTINCT FROM x.execution
                          THEN 'the lease is held by ' || COALESCE('execution ' || l.execution, 'a direct invocation') || ' now: this attempt''s process died'
                        ELSE 'lease expired at ' || to_char(l.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC: its process died'
                   END AS reason
              FROM etl.runs x
              LEFT JOIN etl.leases l ON l.pipeline = x.pipeline AND l.logical_date = x.logical_date
             WHERE x.status = 'running' AND ($1::text IS NULL OR x.pipeline = $1)
               AND NOT (l.pipeline IS NOT NULL AND l.released_at IS NULL AND l.expires_at > now()
                        AND l.execution IS NOT DISTINCT FROM x.execution)) dead
     WHERE r.run_id = dead.run_id AND r.status = 'running'";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn held_by(owner: &str, until: &str) -> Holder {
        Holder {
            owner: owner.into(),
            execution: Some(owner.into()),
            expires_at: at(until),
            released: false,
        }
    }

    #[test]
    fn a_free_or_released_date_is_taken() {
        let now = at("2026-11-25T01:00:00Z");
        assert_eq!(decide(None, "a", now), Decision::Take { expired: None });
        let released = Holder {
            released: true,
            ..held_by("b", "2026-11-25T02:00:00Z")
        };
        assert_eq!(
            decide(Some(&released), "a", now),
            Decision::Take { expired: None }
        );
    }

    #[test]
    fn our_own_lease_is_renewed_even_just_expired() {
        let now = at("2026-11-25T01:00:00Z");
        for until in ["2026-11-25T02:00:00Z", "2026-11-25T00:59:00Z"] {
            assert_eq!(
                decide(Some(&held_by("a", until)), "a", now),
                Decision::Renew
            );
        }
    }

    #[test]
    fn another_owner_is_refused_until_the_expiry_then_taken_over() {
        let holder = held_by("b", "2026-11-25T01:30:00Z");
        assert_eq!(
            decide(Some(&holder), "a", at("2026-11-25T01:29:59Z")),
            Decision::Refuse(holder.clone())
        );
        for now in ["2026-11-25T01:30:00Z", "2026-11-25T03:00:00Z"] {
            assert_eq!(
                decide(Some(&holder), "a", at(now)),
                Decision::Take {
                    expired: Some(holder.clone())
                }
            );
        }
    }

    #[test]
    fn reasons_and_holders_name_the_execution_or_the_invocation() {
        let holder = held_by("hr-manual", "2026-11-25T01:30:00Z");
        assert_eq!(holder.describe(), "execution hr-manual");
        assert_eq!(
            takeover_reason(&holder, "execution hr-scheduled"),
            "lease expired at 2026-11-25 01:30:00 UTC (held by execution hr-manual); \
             taken over by execution hr-scheduled"
        );
        assert_eq!(
            describe("direct-1-2-3", None),
            "a direct invocation (direct-1-2-3)"
        );
        assert!(direct_owner().starts_with("direct-"));
        assert_ne!(direct_owner(), direct_owner());
    }

    #[test]
    fn work_for_an_execution_is_renewed_by_its_retry_and_refused_to_other_work() {
        let label = work_label("hr-b", "a refresh from 2026-11-24");
        assert_eq!(label, "a refresh from 2026-11-24 for execution hr-b");
        let holder = Holder {
            owner: label.clone(),
            execution: None,
            expires_at: at("2026-11-25T01:30:00Z"),
            released: false,
        };
        // Held by an attempt ended mid-way: its retry (the same work of the same execution)
        // renews it, even past its expiry.
        for now in ["2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z"] {
            assert_eq!(decide(Some(&holder), &label, at(now)), Decision::Renew);
        }
        let now = at("2026-11-25T01:00:00Z");
        for other in [
            work_label("hr-b", "a refresh from 2026-11-23"),
            work_label("hr-c", "a refresh from 2026-11-24"),
            "hr-b".to_string(),
        ] {
            assert_eq!(
                decide(Some(&holder), &other, now),
                Decision::Refuse(holder.clone())
            );
        }
        // Refusals name the work, never as "execution …": the hr machine reads that as the
        // date being another execution's (its `DateFailedBefore`).
        assert_eq!(holder.describe(), label);
        assert!(!holder.describe().starts_with("execution "));
    }

    #[test]
    fn renewals_come_every_third_of_the_expiry_but_not_too_often() {
        assert_eq!(renew_period(DEFAULT_TTL), Duration::from_secs(600));
        assert_eq!(renew_period(Duration::from_millis(30)), MIN_RENEW_PERIOD);
    }
}
