//! The one SQL layer under the store: a statement is written once, with `$1..$N` placeholders, and
//! runs on SQLite (rusqlite) or PostgreSQL (the `postgres` client) through [`Sql`]. Values cross
//! as [`Value`] (null, integer, text: the only types the schema uses) and come back as owned
//! [`Row`]s with typed getters, so call sites never see either driver.
//!
//! What differs between the two lives here, not at the call sites:
//! - placeholders: SQLite gets `$N` rewritten to `?N` ([`sqlite_placeholders`]), because SQLite
//!   reads `$N` as a *named* parameter numbered by first appearance, which breaks a statement that
//!   uses `$2` before `$1`;
//! - types: integers and booleans are BIGINT on PostgreSQL (0/1, as in SQLite), and a value is
//!   encoded as the type the server inferred for its parameter (an INT4 for `length(x) + $1`), so a
//!   statement needs no casts;
//! - a parameter only tested for NULL (`$1 IS NULL OR repository = $1`) is written
//!   `CAST($1 AS TEXT) IS NULL`, which both accept: PostgreSQL cannot infer a type from `IS NULL`;
//! - errors: a unique violation is told apart on both ([`is_unique_violation`]);
//! - prepared statements: SQLite's per-connection cache (`prepare_cached`), and a per-connection
//!   cache of PostgreSQL's [`postgres::Statement`]s ([`PgConnection`]), so a repeated statement
//!   costs one round trip.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use super::{DbError, Result};
use postgres::types::{IsNull, ToSql, Type};

/// Which database a [`Sql`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A parameter or a column: the schema stores only integers (booleans as 0/1) and text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// What may be bound as a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_values!(i64, i32, u32, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// `params![a, b]`: the parameters of a statement, `$1` first.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::sql::ToValue),*][..]
    };
}
pub(crate) use params;

/// What a column may be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row, owned (read out of the driver before the next statement runs).
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` (from 0) as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).ok_or_else(|| DbError::Type(format!("no column {i}")))?;
        T::from_value(v).map_err(|e| DbError::Type(format!("column {i}: {e}")))
    }

    /// Every column, as read (to copy a row as it is).
    pub fn values(&self) -> &[Value] {
        &self.0
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// `$N` as `?N`, outside quoted strings and identifiers. Every statement is written with `$N`
/// (PostgreSQL's spelling); SQLite numbers `$N` by first appearance instead, so it gets `?N`.
pub fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                // A doubled quote inside a quoted run is an escaped quote; it ends and restarts it.
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
            None => out.push(c),
        }
    }
    out
}

/// Runs `f`, which may use the blocking PostgreSQL client, wherever the caller is. The client
/// drives its connection on a runtime of its own, which panics inside an async task (a caller that
/// did not move to `spawn_blocking`, or a connection dropped there); on a worker of the server's
/// multi-threaded runtime `f` runs through `block_in_place`, which leaves the runtime's context
/// for its duration. On a blocking thread, or outside any runtime, `f` just runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A pooled PostgreSQL connection with its prepared statements.
pub struct PgConnection {
    /// Always `Some` until dropped (taken out to be dropped outside an async context).
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        // Closing the client blocks on its runtime too.
        if let Some(client) = self.client.take() {
            blocking(move || drop(client));
        }
    }
}

/// Most prepared statements kept per PostgreSQL connection; the store has fewer distinct ones
/// than this, except for statements built per call (an `IN` list per repository count).
const MAX_STATEMENTS: usize = 256;

/// Opens [`PgConnection`]s for r2d2.
pub struct PgManager {
    config: postgres::Config,
    timeout: Duration,
}

impl PgManager {
    /// A manager for `url` (`postgres://user@host:port/db`); `timeout` bounds connecting and
    /// every statement.
    pub fn new(url: &str, timeout: Duration) -> Result<PgManager> {
        let mut config: postgres::Config =
            url.parse().map_err(|e| DbError::Config(format!("`database = {url:?}`: {e}")))?;
        config.connect_timeout(timeout);
        config.application_name("sluice");
        Ok(PgManager { config, timeout })
    }

    /// The connection settings, for a connection outside the pool (a listener, a lock holder).
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }
}

/// A connection failure with its causes spelled out ("error connecting to server: Connection
/// refused"): the pool reports only an error's own message, and the client's names no cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PgConnectError(String);

impl From<postgres::Error> for PgConnectError {
    fn from(e: postgres::Error) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !message.ends_with(&cause_text) {
                message = format!("{message}: {cause_text}");
            }
            source = cause.source();
        }
        PgConnectError(message)
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = PgConnectError;

    fn connect(&self) -> std::result::Result<PgConnection, PgConnectError> {
        let mut client = self.config.connect(postgres::NoTls)?;
        // A statement (a write waiting for the write lock included) fails after the timeout
        // instead of holding a request forever, as SQLite's busy timeout does.
        client.batch_execute(&format!("SET statement_timeout = {}", self.timeout.as_millis()))?;
        Ok(PgConnection { client: Some(client), statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut PgConnection) -> std::result::Result<(), PgConnectError> {
        Ok(conn.client.as_mut().expect("an open connection").simple_query("").map(|_| ())?)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.as_ref().is_none_or(postgres::Client::is_closed)
    }
}

/// A value as the PostgreSQL type the server inferred for its parameter.
#[derive(Debug)]
struct PgValue<'a>(&'a Value);

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`, which fails for a type the value cannot be.
        true
    }

    postgres::types::to_sql_checked!();
}

/// A PostgreSQL column as a [`Value`].
fn pg_value(row: &postgres::Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_();
    let v = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into())),
        _ => row.try_get::<_, Option<String>>(i)?.map(Value::Text),
    };
    Ok(v.unwrap_or(Value::Null))
}

enum PgClient<'c> {
    Client(&'c mut postgres::Client),
    Tx(postgres::Transaction<'c>),
}

struct PgSession<'c> {
    client: PgClient<'c>,
    statements: &'c mut HashMap<String, postgres::Statement>,
}

impl PgSession<'_> {
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = match &mut self.client {
            PgClient::Client(c) => c.prepare(sql)?,
            PgClient::Tx(t) => t.prepare(sql)?,
        };
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<postgres::Row>> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<PgValue> = values.iter().map(PgValue).collect();
        let params: Vec<&(dyn ToSql + Sync)> = wrapped.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(match &mut self.client {
            PgClient::Client(c) => c.query(&stmt, &params)?,
            PgClient::Tx(t) => t.query(&stmt, &params)?,
        })
    }

    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let wrapped: Vec<PgValue> = values.iter().map(PgValue).collect();
        let params: Vec<&(dyn ToSql + Sync)> = wrapped.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        Ok(match &mut self.client {
            PgClient::Client(c) => c.execute(&stmt, &params)?,
            PgClient::Tx(t) => t.execute(&stmt, &params)?,
        })
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        match &mut self.client {
            PgClient::Client(c) => c.batch_execute(sql)?,
            PgClient::Tx(t) => t.batch_execute(sql)?,
        }
        Ok(())
    }
}

enum Inner<'c> {
    /// A connection or a transaction (which derefs to its connection).
    Sqlite(&'c rusqlite::Connection),
    /// The client's methods take `&mut`; the store's helpers share one `&Sql`.
    Postgres(RefCell<PgSession<'c>>),
}

/// A connection, or a transaction, on either database: where every statement runs.
pub struct Sql<'c> {
    inner: Inner<'c>,
}

fn sqlite_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
    }
}

fn sqlite_row(row: &rusqlite::Row, columns: usize) -> Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(columns);
    for i in 0..columns {
        out.push(match row.get_ref(i)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Real(r) => return Err(DbError::Type(format!("column {i}: unexpected real {r}"))),
        });
    }
    Ok(Row(out))
}

impl<'c> Sql<'c> {
    pub fn sqlite(conn: &'c rusqlite::Connection) -> Sql<'c> {
        Sql { inner: Inner::Sqlite(conn) }
    }

    pub fn postgres(conn: &'c mut PgConnection) -> Sql<'c> {
        let PgConnection { client, statements } = conn;
        let client = PgClient::Client(client.as_mut().expect("an open connection"));
        Sql { inner: Inner::Postgres(RefCell::new(PgSession { client, statements })) }
    }

    /// A PostgreSQL transaction on `conn`; [`Sql::commit`] ends it (dropped, it rolls back).
    pub fn postgres_transaction(conn: &'c mut PgConnection) -> Result<Sql<'c>> {
        let PgConnection { client, statements } = conn;
        let tx = client.as_mut().expect("an open connection").transaction()?;
        Ok(Sql { inner: Inner::Postgres(RefCell::new(PgSession { client: PgClient::Tx(tx), statements })) })
    }

    /// Commits a transaction begun by [`Sql::postgres_transaction`]; a no-op otherwise (SQLite
    /// transactions are committed by their owner).
    pub fn commit(self) -> Result<()> {
        if let Inner::Postgres(session) = self.inner {
            if let PgClient::Tx(tx) = session.into_inner().client {
                tx.commit()?;
            }
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> Result<usize> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_placeholders(sql))?;
                let n = stmt.execute(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?;
                Ok(n)
            }
            Inner::Postgres(s) => Ok(s.borrow_mut().execute(sql, &values)? as usize),
        }
    }

    /// Runs a query; returns every row.
    pub fn query(&self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<Row>> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        match &self.inner {
            Inner::Sqlite(c) => {
                let mut stmt = c.prepare_cached(&sqlite_placeholders(sql))?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(sqlite_row(row, columns)?);
                }
                Ok(out)
            }
            Inner::Postgres(s) => {
                let rows = s.borrow_mut().query(sql, &values)?;
                rows.iter().map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect::<Result<Vec<_>>>().map(Row)).collect()
            }
        }
    }

    /// Every row, through `map`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(map).collect()
    }

    /// The first row through `map`, if there is one.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        map: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.query(sql, params)?.first().map(map).transpose()
    }

    /// The first row through `map`; `NotFound` when there is none.
    pub fn query_one<T>(&self, sql: &str, params: &[&dyn ToValue], map: impl FnOnce(&Row) -> Result<T>) -> Result<T> {
        self.query_opt(sql, params, map)?.ok_or_else(|| DbError::NotFound("row".into()))
    }

    /// Column 0 of the first row.
    pub fn query_value<T: FromValue>(&self, sql: &str, params: &[&dyn ToValue]) -> Result<T> {
        self.query_one(sql, params, |r| r.get(0))
    }

    /// Runs several statements without parameters (migrations), as written: no rewriting.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(s) => s.borrow_mut().batch(sql),
        }
    }
}

/// Whether a driver error is a unique-key violation: the database refusing a duplicate.
pub(super) fn is_unique_violation(e: &DbError) -> bool {
    match e {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        }
        DbError::Postgres(p) => p.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_question_marks_outside_quotes() {
        assert_eq!(
            sqlite_placeholders("SELECT a FROM t WHERE b = $2 AND c = $1 AND d = $10"),
            "SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = ?10"
        );
        // A JSON path, a `$` in an identifier or a string with a quote escaped are left alone.
        assert_eq!(
            sqlite_placeholders("SELECT json_extract(m, '$.x'), \"$1\", 'it''s $3' FROM t WHERE a = $1"),
            "SELECT json_extract(m, '$.x'), \"$1\", 'it''s $3' FROM t WHERE a = ?1"
        );
        // A dollar not followed by a digit is not a placeholder.
        assert_eq!(sqlite_placeholders("SELECT $x, $"), "SELECT $x, $");
    }

    #[test]
    fn a_connection_error_names_its_cause() {
        let manager = PgManager::new("postgres://nobody@127.0.0.1:1/none", Duration::from_secs(2)).unwrap();
        let e = r2d2::ManageConnection::connect(&manager).err().expect("nothing listens on port 1");
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
        assert!(PgManager::new("postgres://x@host:notaport/db", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(Some("a").to_value(), Value::Text("a".into()));
        assert_eq!(None::<i64>.to_value(), Value::Null);
        assert_eq!(true.to_value(), Value::Int(1));
        let row = Row(vec![Value::Int(1), Value::Null, Value::Text("x".into())]);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        assert!(row.get::<i64>(2).is_err(), "text is not an integer");
        assert!(row.get::<i64>(3).is_err(), "no such column");
    }

    #[test]
    fn statements_run_on_sqlite_with_out_of_order_placeholders() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = Sql::sqlite(&conn);
        sql.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)").unwrap();
        let id: i64 = sql.query_value("INSERT INTO t (n, name) VALUES ($2, $1) RETURNING id", params!["a", 7]).unwrap();
        assert_eq!(id, 1);
        let row = sql
            .query_one("SELECT name, n FROM t WHERE id = $1", params![id], |r| {
                Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
            })
            .unwrap();
        assert_eq!(row, ("a".to_string(), 7));
        let dup = sql.execute("INSERT INTO t (name, n) VALUES ($1, $2)", params!["a", 8]).unwrap_err();
        assert!(is_unique_violation(&dup), "{dup}");
        assert!(sql
            .query_opt("SELECT id FROM t WHERE name = $1", params!["b"], |r| r.get::<i64>(0))
            .unwrap()
            .is_none());
    }
}
