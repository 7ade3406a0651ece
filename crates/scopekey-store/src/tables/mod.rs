//! One module per table group, each with its queries and its row mapping together. A row
//! that does not parse is an error naming the row, never a panic and never silently skipped.
//!
//! May import: the crate root, `db`, `store` and `audit_query`; never `replica` or `sinks`.
//! Among the tables the arrows point one way: `families` and `consumers` revoke through
//! `revocations`, which audits through `audit`; `keys`, `tokens` and `uses` stand alone.

pub(crate) mod audit;
pub(crate) mod clients;
pub(crate) mod consumers;
pub(crate) mod families;
pub(crate) mod keys;
pub(crate) mod replays;
pub(crate) mod revocations;
pub(crate) mod tokens;
pub(crate) mod uses;

use crate::StoreError;
use sqlx::Row;

/// A row of either backend, read column by column. A column that does not decode is a
/// corrupt-row error naming the `table`, the row (`key`) and the column. The blanket impl
/// carries the decoding bounds once, so the mapping functions need none.
pub(crate) trait Cells {
    fn int(&self, table: &str, key: &str, column: &str) -> Result<i64, StoreError>;
    fn int_or_null(&self, table: &str, key: &str, column: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, table: &str, key: &str, column: &str) -> Result<String, StoreError>;
    fn text_or_null(
        &self,
        table: &str,
        key: &str,
        column: &str,
    ) -> Result<Option<String>, StoreError>;
}

impl<R> Cells for R
where
    R: Row,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
{
    fn int(&self, table: &str, key: &str, column: &str) -> Result<i64, StoreError> {
        get(self, table, key, column)
    }

    fn int_or_null(&self, table: &str, key: &str, column: &str) -> Result<Option<i64>, StoreError> {
        get(self, table, key, column)
    }

    fn text(&self, table: &str, key: &str, column: &str) -> Result<String, StoreError> {
        get(self, table, key, column)
    }

    fn text_or_null(
        &self,
        table: &str,
        key: &str,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        get(self, table, key, column)
    }
}

fn get<'r, T, R>(row: &'r R, table: &str, key: &str, column: &'r str) -> Result<T, StoreError>
where
    R: Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::ColumnIndex<R>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| StoreError::corrupt(table, key, format_args!("column {column}: {e}")))
}
