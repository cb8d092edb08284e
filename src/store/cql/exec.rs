//! How the ScyllaDB store runs its prepared statements: one helper per
//! shape of request (write, single row, every page, lightweight
//! transaction), and the one mapping of driver errors to [`StoreError`].
//! Each request's time feeds the store histograms of `/metrics`: one CQL
//! write or LWT in `store_write_seconds`, the first page of a read in
//! `store_read_seconds`.

use futures_util::StreamExt;
use scylla::client::pager::TypedRowStream;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{
    DbError, ExecutionError, NextPageError, NextRowError, PagerExecutionError, RequestAttemptError, RequestError,
};
use scylla::response::PagingState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use scylla::value::{CqlValue, Row};

use super::statements::{Kind, Q, Statements};
use crate::error::StoreError;
use crate::metrics;

/// What a lightweight transaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lwt {
    Applied,
    NotApplied,
    /// It timed out: it may or may not have been applied. The caller reads
    /// back (at SERIAL consistency) to find out; it never retries blindly.
    Unknown,
}

/// The session and its prepared statements.
pub struct Db {
    pub session: Session,
    pub st: Statements,
}

/// Maps a driver error: timeouts, overload and unreachable replicas are
/// `Unavailable` (retry later), everything else `Backend`.
pub fn map_err(e: ExecutionError) -> StoreError {
    if is_uncertain(&e) || is_unavailable(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

fn pager_err(e: PagerExecutionError) -> StoreError {
    match e {
        PagerExecutionError::NextPageError(p) => page_err(p),
        other => StoreError::Backend(other.to_string()),
    }
}

fn page_err(e: NextPageError) -> StoreError {
    let transient = match &e {
        NextPageError::RequestFailure(r) => match r {
            RequestError::EmptyPlan | RequestError::ConnectionPoolError(_) | RequestError::RequestTimeout(_) => true,
            RequestError::LastAttemptError(a) => attempt_transient(a),
            _ => false,
        },
        _ => false,
    };
    if transient { StoreError::Unavailable(e.to_string()) } else { StoreError::Backend(e.to_string()) }
}

fn row_err(e: NextRowError) -> StoreError {
    match e {
        NextRowError::NextPageError(p) => page_err(p),
        other => StoreError::Backend(other.to_string()),
    }
}

/// True when a write may or may not have happened (a timeout).
pub fn is_uncertain(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::RequestTimeout(_)
            | ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::WriteTimeout { .. }, _))
    )
}

fn is_unavailable(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::EmptyPlan | ExecutionError::ConnectionPoolError(_) => true,
        ExecutionError::LastAttemptError(a) => attempt_transient(a),
        _ => false,
    }
}

/// Overload, timeouts, missing replicas, broken connections: worth a retry later.
fn attempt_transient(e: &RequestAttemptError) -> bool {
    match e {
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::RateLimitReached { .. }
        ),
        RequestAttemptError::BrokenConnectionError(_) => true,
        _ => false,
    }
}

impl Db {
    /// Runs a write (or any statement whose rows are not needed).
    pub async fn write(&self, q: Q, values: impl SerializeRow) -> Result<(), StoreError> {
        debug_assert_eq!(self.st.kind(q), Kind::Write, "{q:?}: LWTs go through Db::lwt, reads through the pager");
        let started = std::time::Instant::now();
        let out = self.session.execute_unpaged(self.st.get(q), values).await;
        metrics::global().store_write_seconds.observe(metrics::since(started));
        out.map_err(map_err)?;
        Ok(())
    }

    /// The first row of a read. One request for the first page (no pager
    /// task: most calls are point reads answered by it); only a first page
    /// that comes back empty but is not the last (tombstones) goes on
    /// through the pager, so an empty page still does not end a read.
    pub async fn one<R>(&self, q: Q, values: impl SerializeRow) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + Unpin + 'static,
    {
        debug_assert_eq!(self.st.kind(q), Kind::Read, "{q:?}");
        let started = std::time::Instant::now();
        let out = self.session.execute_single_page(self.st.get(q), &values, PagingState::start()).await;
        metrics::global().store_read_seconds.observe(metrics::since(started));
        let (result, paging) = out.map_err(map_err)?;
        let rows = result.into_rows_result().map_err(|e| StoreError::Backend(e.to_string()))?;
        if let Some(row) = rows.maybe_first_row::<R>().map_err(|e| StoreError::Backend(e.to_string()))? {
            return Ok(Some(row));
        }
        if paging.finished() {
            return Ok(None);
        }
        self.stream::<R>(q, values).await?.next_row().await
    }

    /// Like [`Db::one`] at SERIAL consistency: sees every applied
    /// lightweight transaction (used to resolve an LWT timeout, and before
    /// a compare-and-set).
    pub async fn one_serial<R>(&self, q: Q, values: impl SerializeRow) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + Unpin + 'static,
    {
        debug_assert_eq!(self.st.kind(q), Kind::Read, "{q:?}");
        let mut st = self.st.get(q).clone();
        st.set_consistency(Consistency::LocalSerial);
        let pager = self.session.execute_iter(st, values).await.map_err(pager_err)?;
        let stream = pager.rows_stream::<R>().map_err(|e| StoreError::Backend(e.to_string()))?;
        RowStream(stream).next_row().await
    }

    /// A lazy stream of a read's rows, fetching page after page on demand.
    pub async fn stream<R>(&self, q: Q, values: impl SerializeRow) -> Result<RowStream<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + 'static,
    {
        debug_assert_eq!(self.st.kind(q), Kind::Read, "{q:?}");
        let started = std::time::Instant::now();
        let pager = self.session.execute_iter(self.st.get(q).clone(), values).await;
        metrics::global().store_read_seconds.observe(metrics::since(started));
        let pager = pager.map_err(pager_err)?;
        Ok(RowStream(pager.rows_stream::<R>().map_err(|e| StoreError::Backend(e.to_string()))?))
    }

    /// Every row of a read, all pages (an empty page is not the end: the
    /// pager goes on until the server says there are no more pages).
    pub async fn rows<R>(&self, q: Q, values: impl SerializeRow) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Send + Unpin + 'static,
    {
        let mut stream = self.stream::<R>(q, values).await?;
        let mut out = Vec::new();
        while let Some(row) = stream.next_row().await? {
            out.push(row);
        }
        Ok(out)
    }

    /// Runs a counter update once (the statement is not idempotent, so the
    /// driver never retries it). An error, a timeout included, may or may
    /// not have been applied: the caller must not send it again.
    pub async fn add(&self, q: Q, values: impl SerializeRow) -> Result<(), StoreError> {
        debug_assert_eq!(self.st.kind(q), Kind::Counter, "{q:?}");
        let started = std::time::Instant::now();
        let out = self.session.execute_unpaged(self.st.get(q), values).await;
        metrics::global().store_write_seconds.observe(metrics::since(started));
        out.map_err(map_err)?;
        Ok(())
    }

    /// Runs a lightweight transaction once; a timeout is [`Lwt::Unknown`].
    pub async fn lwt(&self, q: Q, values: impl SerializeRow) -> Result<Lwt, StoreError> {
        debug_assert_eq!(self.st.kind(q), Kind::Lwt, "{q:?}");
        let started = std::time::Instant::now();
        let out = self.session.execute_unpaged(self.st.get(q), values).await;
        metrics::global().store_write_seconds.observe(metrics::since(started));
        match out {
            Ok(res) => {
                let rows = res.into_rows_result().map_err(|e| StoreError::Backend(e.to_string()))?;
                let row = rows.maybe_first_row::<Row>().map_err(|e| StoreError::Backend(e.to_string()))?;
                Ok(if applied(row.as_ref()) { Lwt::Applied } else { Lwt::NotApplied })
            }
            Err(e) if is_uncertain(&e) => Ok(Lwt::Unknown),
            Err(e) => Err(map_err(e)),
        }
    }
}

/// Rows of a paged read, fetched as they are consumed.
pub struct RowStream<R>(TypedRowStream<R>);

impl<R> RowStream<R>
where
    R: for<'f, 'm> DeserializeRow<'f, 'm> + Unpin,
{
    /// The next row; `None` once the server has no more pages.
    pub async fn next_row(&mut self) -> Result<Option<R>, StoreError> {
        self.0.next().await.transpose().map_err(row_err)
    }
}

/// The `[applied]` column (always first) of a lightweight transaction's row.
pub fn applied(row: Option<&Row>) -> bool {
    matches!(row.and_then(|r| r.columns.first()), Some(Some(CqlValue::Boolean(true))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_reads_the_first_column() {
        let row = |v: Option<CqlValue>| Row { columns: vec![v, Some(CqlValue::BigInt(7))] };
        assert!(applied(Some(&row(Some(CqlValue::Boolean(true))))));
        assert!(!applied(Some(&row(Some(CqlValue::Boolean(false))))));
        assert!(!applied(Some(&row(None))));
        assert!(!applied(None));
    }

    #[test]
    fn timeouts_are_uncertain_and_unavailable() {
        let e = ExecutionError::RequestTimeout(std::time::Duration::from_secs(1));
        assert!(is_uncertain(&e));
        assert!(matches!(map_err(e), StoreError::Unavailable(_)));
        let e = ExecutionError::EmptyPlan;
        assert!(!is_uncertain(&e));
        assert!(matches!(map_err(e), StoreError::Unavailable(_)));
    }

    #[test]
    fn a_page_that_times_out_is_unavailable_not_a_backend_fault() {
        let timeout = NextPageError::RequestFailure(RequestError::RequestTimeout(std::time::Duration::from_secs(1)));
        assert!(matches!(row_err(NextRowError::NextPageError(timeout)), StoreError::Unavailable(_)));
        let e = NextPageError::RequestFailure(RequestError::EmptyPlan);
        assert!(matches!(pager_err(PagerExecutionError::NextPageError(e)), StoreError::Unavailable(_)));
    }
}
