//! PostgreSQL's engine (see the module doc of `adapter::postgres` for how it keeps xform's
//! guarantees).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::{CancelToken, Client, NoTls, SimpleQueryMessage};

use super::{Flavour, Settings, SslMode};
use crate::adapter::seed;
use crate::adapter::statements::{self, Statements, body, kind_word, limited, lit as literal};
use crate::adapter::{
    Around, Build, BuildRecord, CsvSource, DbError, DbResult, Layout, RelKind, Relation, Rows,
    SchemaGrants, Session, Staged, Warehouse, kind_built,
};
use crate::sql::{Dialect, Kind};

impl Flavour {
    fn dialect(self) -> &'static dyn Dialect {
        match self {
            Flavour::Postgres => Kind::Postgres.dialect(),
            Flavour::Redshift => Kind::Redshift.dialect(),
        }
    }

    /// Whether a failed statement can be undone alone (`SAVEPOINT`) inside a transaction.
    fn savepoints(self) -> bool {
        self == Flavour::Postgres
    }
}

/// Quoting as PostgreSQL does (Redshift folds even quoted names to lower case, and xform
/// stores its relations' names folded there: the same text names the same thing).
fn quote(ident: &str) -> String {
    Kind::Postgres.dialect().quote(ident)
}

fn rel(r: &Relation) -> String {
    Kind::Postgres.dialect().relation(r)
}

/// The catalog's condition for `relation`, `c` being its `pg_class` row and `n` its
/// namespace's (no `regclass`, which Redshift lacks).
fn catalog_match(relation: &Relation) -> String {
    format!(
        "n.nspname = {} AND c.relname = {}",
        literal(&relation.schema),
        literal(&relation.name)
    )
}

/// PostgreSQL's longest identifier, in bytes; longer names are cut silently.
const MAX_IDENT: usize = 63;

/// A table built beside the published one carries this suffix until it is swapped in; the
/// table it replaces, the other. Neither is ever committed.
const NEW_SUFFIX: &str = "__xform_new";

/// How many times a swap tries to lock a table its readers hold, or another swap deadlocked
/// with (waiting 0.25 s, then 1 s, each plus up to 0.2 s).
const LOCK_TRIES: u32 = 3;
const OLD_SUFFIX: &str = "__xform_old";

/// How connections are encrypted.
#[derive(Clone)]
enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// What the warehouse and its sessions share.
struct Shared {
    flavour: Flavour,
    config: postgres::Config,
    tls: Tls,
    lock_timeout: String,
    lock_name: String,
    /// Every session's cancel token, for `interrupt`.
    cancels: Mutex<Vec<CancelToken>>,
    /// The session holding the run lock, for as long as the process runs.
    lock: Mutex<Option<Client>>,
}

impl Shared {
    fn connect(&self) -> DbResult<Client> {
        let connected = match &self.tls {
            Tls::None => self.config.connect(NoTls),
            Tls::Rustls(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|e| DbError::Failed(format!("cannot connect: {}", message(&e))))
    }

    fn cancel(&self, token: &CancelToken) {
        let _ = match &self.tls {
            Tls::None => token.cancel_query(NoTls),
            Tls::Rustls(tls) => token.cancel_query(tls.clone()),
        };
    }
}

pub(crate) struct Pg {
    shared: Arc<Shared>,
    version: String,
}

impl Pg {
    /// Connects once to check the server (and read its version).
    pub(crate) fn open(s: &Settings) -> DbResult<Pg> {
        let mut config = postgres::Config::new();
        config
            .host(&s.host)
            .port(s.port)
            .user(&s.user)
            .dbname(&s.dbname)
            .application_name(&format!("xform (pid {})", std::process::id()))
            .connect_timeout(Duration::from_secs(s.connect_timeout))
            .ssl_mode(match s.sslmode {
                SslMode::Disable => postgres::config::SslMode::Disable,
                SslMode::Prefer => postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => postgres::config::SslMode::Require,
            });
        if let Some(p) = &s.password {
            config.password(p);
        }
        let shared = Arc::new(Shared {
            flavour: s.flavour,
            config,
            tls: tls(s)?,
            lock_timeout: s.lock_timeout.clone(),
            lock_name: s.lock_name.clone(),
            cancels: Mutex::default(),
            lock: Mutex::default(),
        });
        let mut client = shared.connect()?;
        let version = scalar(&mut client, "SELECT version()")?.unwrap_or_default();
        if version.contains("Redshift") && s.flavour == Flavour::Postgres {
            return Err(DbError::Failed(format!(
                "{}:{} is an Amazon Redshift server, not PostgreSQL: Redshift lacks much of what \
                 a postgres target uses (savepoints, COPY FROM STDIN, IS NOT DISTINCT FROM); \
                 set `type: redshift` on this target",
                s.host, s.port
            )));
        }
        Ok(Pg { shared, version })
    }
}

fn tls(s: &Settings) -> DbResult<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Failed(format!("TLS: {e}")))?;
    let config = match s.sslmode {
        SslMode::Disable => return Ok(Tls::None),
        SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
        SslMode::VerifyFull => builder
            .with_root_certificates(roots(s.sslrootcert.as_deref())?)
            .with_no_client_auth(),
    };
    Ok(Tls::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(
        config,
    )))
}

/// The certificates a server's may chain to: `sslrootcert`'s, else the public roots.
fn roots(sslrootcert: Option<&std::path::Path>) -> DbResult<rustls::RootCertStore> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut store = rustls::RootCertStore::empty();
    let Some(path) = sslrootcert else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    };
    let bad =
        |e: &dyn std::fmt::Display| DbError::Failed(format!("sslrootcert {}: {e}", path.display()));
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
        store.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    Ok(store)
}

/// `sslmode: require` (as libpq means it): encrypted, the certificate not checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Warehouse for Pg {
    fn session(&self) -> DbResult<Box<dyn Session>> {
        let mut client = self.shared.connect()?;
        // A killed xform's statement stops within a second (PostgreSQL 14 and later; older
        // servers refuse the setting and run the statement to its end before rolling back).
        if self.shared.flavour == Flavour::Postgres {
            let _ = client.batch_execute("SET client_connection_check_interval = '1s'");
        }
        self.shared
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client.cancel_token());
        Ok(Box::new(PgSession {
            client,
            flavour: self.shared.flavour,
            shared: self.shared.clone(),
            open: false,
            layout: Layout::default(),
            deferred: Vec::new(),
        }))
    }

    fn interrupt(&self) {
        let tokens = self
            .shared
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for token in &tokens {
            self.shared.cancel(token);
        }
    }

    fn version(&self) -> DbResult<String> {
        let v = self.version.split(" on ").next().unwrap_or(&self.version);
        Ok(v.to_string())
    }

    fn claim(&self) -> DbResult<()> {
        let mut held = self
            .shared
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let mut client = self.shared.connect()?;
        let (taken, lock, which) = match self.shared.flavour {
            Flavour::Postgres => self.advisory_lock(&mut client)?,
            Flavour::Redshift => self.table_lock(&mut client)?,
        };
        if taken {
            *held = Some(client);
            return Ok(());
        }
        let holder = lock_holder(&mut client, &which).unwrap_or_default();
        Err(DbError::Failed(format!(
            "another xform run holds this target (its run lock {lock}){holder}; wait for it to \
             finish (or stop it), or use another target"
        )))
    }
}

impl Pg {
    /// PostgreSQL: an advisory lock named after the target's schemas. Whether it was taken,
    /// its name, and which `pg_locks` row is it.
    fn advisory_lock(&self, client: &mut Client) -> DbResult<(bool, String, String)> {
        let key = literal(&format!("xform:{}", self.shared.lock_name));
        let sql = format!("SELECT pg_try_advisory_lock(hashtext({key}))");
        let taken = scalar(client, &sql)?.as_deref() == Some("t");
        let which =
            format!("l.locktype = 'advisory' AND l.objid = (hashtext({key})::bigint & 4294967295)");
        Ok((taken, format!("`xform:{}`", self.shared.lock_name), which))
    }

    /// Redshift, which has no advisory locks: table `xform_run_lock` in the target's schema,
    /// locked by a transaction this session keeps open for the run. A second run waits a
    /// second for it, then gives up.
    fn table_lock(&self, client: &mut Client) -> DbResult<(bool, String, String)> {
        let table = Relation::new(&self.shared.lock_name, "xform_run_lock");
        let exists = format!(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {}",
            catalog_match(&table)
        );
        let d = self.shared.flavour.dialect();
        let name = d.relation(&table);
        if scalar(client, &exists)?.as_deref() == Some("0") {
            let schema = d.quote(&table.schema);
            let create = format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {name} (holder VARCHAR(256))"
            );
            client.batch_execute(&create).map_err(failed)?;
        }
        let lock = format!("SET statement_timeout = 1000; BEGIN; LOCK TABLE {name}");
        let taken = client.batch_execute(&lock).is_ok();
        let settle = match taken {
            true => "SET statement_timeout = 0",
            false => "ROLLBACK; SET statement_timeout = 0",
        };
        client.batch_execute(settle).map_err(failed)?;
        let which = format!(
            "l.locktype = 'relation' AND l.relation = (SELECT c.oid FROM pg_class c JOIN \
             pg_namespace n ON n.oid = c.relnamespace WHERE {})",
            catalog_match(&table)
        );
        Ok((taken, format!("table `{table}`"), which))
    }
}

/// Who holds the run lock (`which`: its `pg_locks` row): " (xform (pid 123) from 10.0.0.5,
/// since 12:00:01)". Where the server cannot say (Redshift has no `pg_locks`), nothing.
fn lock_holder(client: &mut Client, which: &str) -> DbResult<String> {
    let sql = format!(
        "SELECT a.application_name, coalesce(host(a.client_addr), 'this host'), \
         to_char(a.backend_start, 'HH24:MI:SS') FROM pg_locks l JOIN pg_stat_activity a ON \
         a.pid = l.pid WHERE {which} AND l.granted LIMIT 1"
    );
    let rows = query_rows(client, &sql, None)?;
    Ok(rows
        .rows
        .first()
        .map(|r| {
            let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            format!(" ({} from {}, since {})", v(0), v(1), v(2))
        })
        .unwrap_or_default())
}

/// The error's message as the server gave it, with its detail and hint.
fn message(e: &postgres::Error) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut m = format!("{}: {}", db.severity(), db.message());
    if let Some(d) = db.detail() {
        m.push_str(&format!("\nDETAIL: {d}"));
    }
    if let Some(h) = db.hint() {
        m.push_str(&format!("\nHINT: {h}"));
    }
    m
}

fn failed(e: postgres::Error) -> DbError {
    let cancelled = e
        .as_db_error()
        .is_some_and(|db| db.message().contains("due to user request"));
    match cancelled {
        true => DbError::Interrupted,
        false => DbError::Failed(message(&e)),
    }
}

/// The first value of a query's first row.
fn scalar(client: &mut Client, sql: &str) -> DbResult<Option<String>> {
    let rows = query_rows(client, sql, None)?;
    Ok(rows
        .rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten()))
}

/// A query's rows as text, through the simple protocol (no type look-ups).
fn query_rows(client: &mut Client, sql: &str, limit: Option<usize>) -> DbResult<Rows> {
    let mut out = Rows::default();
    for m in client.simple_query(sql).map_err(failed)? {
        match m {
            SimpleQueryMessage::RowDescription(cols) if out.columns.is_empty() => {
                out.columns = cols.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) if limit.is_none_or(|l| out.rows.len() < l) => {
                out.rows
                    .push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            _ => {}
        }
    }
    Ok(out)
}

struct PgSession {
    client: Client,
    flavour: Flavour,
    shared: Arc<Shared>,
    /// Whether a transaction is open.
    open: bool,
    /// The layout of what the open transaction builds.
    layout: Layout,
    /// Statements to send with the next one (`defer`).
    deferred: Vec<String>,
}

/// `relation`'s name with `suffix`, shortened (with a hash of the whole name, so two long
/// names stay apart) where PostgreSQL would cut it.
fn suffixed(relation: &Relation, suffix: &str) -> Relation {
    let name = &relation.name;
    if name.len() + suffix.len() <= MAX_IDENT {
        return Relation::new(&relation.schema, format!("{name}{suffix}"));
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(name.as_bytes());
    let short = crate::hex(&hash[..4]);
    let keep = MAX_IDENT - suffix.len() - short.len() - 1;
    let cut = (0..=keep)
        .rev()
        .find(|&i| name.is_char_boundary(i))
        .unwrap_or(0);
    Relation::new(
        &relation.schema,
        format!("{}_{short}{suffix}", &name[..cut]),
    )
}

/// The values of one line of `COPY … TO STDOUT` (text format): tab-separated, `\N` for NULL,
/// backslash escapes for the rest.
fn copy_fields(line: &[u8]) -> Vec<Option<String>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.split(|&b| b == b'\t')
        .map(|field| {
            if field == b"\\N" {
                return None;
            }
            let mut out = Vec::with_capacity(field.len());
            let mut bytes = field.iter();
            while let Some(&b) = bytes.next() {
                if b != b'\\' {
                    out.push(b);
                    continue;
                }
                out.push(match bytes.next() {
                    Some(b'n') => b'\n',
                    Some(b't') => b'\t',
                    Some(b'r') => b'\r',
                    Some(b'b') => 8,
                    Some(b'f') => 12,
                    Some(b'v') => 11,
                    Some(&other) => other,
                    None => b'\\',
                });
            }
            Some(String::from_utf8_lossy(&out).into_owned())
        })
        .collect()
}

/// A view that reads a relation: its name and definition.
type Dependent = (Relation, String);

/// Rows of schema, name and one more text column, as a relation and that text.
fn named_rows(rows: Rows) -> impl Iterator<Item = (Relation, String)> {
    rows.rows.into_iter().map(|r| {
        let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        (Relation::new(v(0), v(1)), v(2))
    })
}

impl PgSession {
    /// Executes one statement (or several, `;`-separated), appending it to `log`.
    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        log.push(sql.to_string());
        let sql = self.after_deferred(sql);
        let done = self.client.batch_execute(&sql).map_err(failed);
        self.lost(done)
    }

    /// A statement whose outcome nothing waits for (`BEGIN`, a setting): sent in one message
    /// with the next one, which saves a round trip per node (measured: 5% of a build).
    fn defer(&mut self, sql: &str, log: &mut Vec<String>) {
        log.push(sql.to_string());
        self.deferred.push(sql.to_string());
    }

    /// `sql` behind the deferred statements, which are then sent.
    fn after_deferred(&mut self, sql: &str) -> String {
        if self.deferred.is_empty() {
            return sql.to_string();
        }
        self.deferred.push(sql.to_string());
        std::mem::take(&mut self.deferred).join(";\n")
    }

    /// Sends the deferred statements now, before what does not take them along (`COPY`).
    fn flush(&mut self) -> DbResult<()> {
        match self.deferred.is_empty() {
            true => Ok(()),
            false => {
                let sql = std::mem::take(&mut self.deferred).join(";\n");
                let done = self.client.batch_execute(&sql).map_err(failed);
                self.lost(done)
            }
        }
    }

    /// Executes a statement and returns the rows it changed or created (its command tag).
    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        log.push(sql.to_string());
        let sql = self.after_deferred(sql);
        let done = self.client.simple_query(&sql).map_err(failed).map(|ms| {
            ms.iter()
                .rev()
                .find_map(|m| match m {
                    SimpleQueryMessage::CommandComplete(n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(0)
        });
        self.lost(done)
    }

    /// A failure inside the open transaction aborted it: what it staged is gone.
    fn lost<T>(&mut self, r: DbResult<T>) -> DbResult<T> {
        match r {
            Err(DbError::Failed(m)) if self.open => Err(DbError::TransactionLost(m)),
            other => other,
        }
    }

    fn begin(&mut self, log: &mut Vec<String>) -> DbResult<()> {
        self.defer("BEGIN", log);
        self.open = true;
        Ok(())
    }

    fn commit(&mut self, log: &mut Vec<String>) -> DbResult<()> {
        self.run("COMMIT", log)?;
        self.open = false;
        Ok(())
    }

    /// Rolls back the open transaction; a cancel that arrives meanwhile (Ctrl-C repeats
    /// them) does not leave it open.
    fn rollback(&mut self, log: &mut Vec<String>) {
        log.push("ROLLBACK".into());
        self.open = false;
        self.deferred.clear();
        for _ in 0..100 {
            match self.client.batch_execute("ROLLBACK").map_err(failed) {
                Err(DbError::Interrupted) => continue,
                _ => return,
            }
        }
    }

    /// Runs `f` in a savepoint of the open transaction (if one is open): when it fails, the
    /// transaction goes on without what it did, and the error is an ordinary failure.
    /// Without savepoints (Redshift), a failure inside the transaction loses it
    /// (`DbError::TransactionLost`).
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> DbResult<T>) -> DbResult<T> {
        if !self.open || !self.flavour.savepoints() {
            return f(self);
        }
        let mut log = Vec::new();
        self.defer("SAVEPOINT xform_guard", &mut log);
        match f(self) {
            Ok(v) => {
                self.defer("RELEASE SAVEPOINT xform_guard", &mut log);
                Ok(v)
            }
            Err(DbError::TransactionLost(m) | DbError::Failed(m)) => {
                self.run("ROLLBACK TO SAVEPOINT xform_guard", &mut log)?;
                Err(DbError::Failed(m))
            }
            Err(e) => Err(e),
        }
    }

    /// The views that read `relation`, with their definitions when `defs` (else empty):
    /// those reading it directly, or (`all`) every view that depends on it through others
    /// too, in the order they can be created. Read a definition only under the locks: a view
    /// another session is re-pointing may name a table that is gone when it commits
    /// ("could not open relation", measured).
    fn dependents(
        &mut self,
        relation: &Relation,
        (all, defs): (bool, bool),
    ) -> DbResult<Vec<Dependent>> {
        let def = if defs { "pg_get_viewdef(c.oid)" } else { "''" };
        // 1259 is pg_class, 2618 pg_rewrite: fixed OIDs (Redshift has no `regclass`).
        let reads = "FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid \
                     WHERE d.classid = 2618 AND d.refclassid = 1259 AND r.ev_class <> d.refobjid";
        let sql = match all {
            // Direct readers (every swap asks, twice): no recursion to plan, which costs more
            // than running it (0.3 ms instead of 0.7 ms a query, measured).
            false => format!(
                "SELECT n.nspname, c.relname, {def} FROM pg_class c\n\
                 JOIN pg_namespace n ON n.oid = c.relnamespace\n\
                 WHERE c.relkind = 'v' AND c.oid IN (SELECT r.ev_class {reads} AND d.refobjid = \
                 (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE {}))\n\
                 ORDER BY 1, 2",
                catalog_match(relation)
            ),
            true => self.chain_of_views(relation, def, reads),
        };
        Ok(named_rows(Statements::rows(self, &sql)?).collect())
    }

    /// The query for every view that reads `relation`, directly or through others, in the
    /// order they can be created, with `def` of each; `reads` the catalog's edges.
    fn chain_of_views(&self, relation: &Relation, def: &str, reads: &str) -> String {
        // pg_depend has a row per column a view reads: each (view, relation) pair is taken
        // once, or a chain of views multiplies the rows at each level (measured: 1.1M rows
        // for six `select *` levels over 10 columns). PostgreSQL's UNION drops the repeats
        // (and between levels), and without a DISTINCT in the edges its planner reaches them
        // through pg_depend's index: 0.3 ms a table instead of 12-25 ms for a scan of every
        // view's edges (measured on the generated 1,000-model project). Redshift's recursion
        // takes UNION ALL only: the edges are made distinct first.
        let (union, distinct) = match self.flavour {
            Flavour::Postgres => ("UNION", ""),
            Flavour::Redshift => ("UNION ALL", "DISTINCT "),
        };
        let edges =
            format!("(SELECT {distinct}r.ev_class AS view_oid, d.refobjid AS read_oid {reads})");
        format!(
            "WITH RECURSIVE deps(oid, depth) AS (\n\
             SELECT e.view_oid, 1 FROM {edges} AS e\n\
             JOIN pg_class c ON c.oid = e.read_oid JOIN pg_namespace n ON n.oid = c.relnamespace\n\
             WHERE {}\n\
             {union}\n\
             SELECT e.view_oid, deps.depth + 1 FROM deps JOIN {edges} AS e ON e.read_oid = deps.oid\n\
             WHERE e.view_oid <> deps.oid)\n\
             SELECT n.nspname, c.relname, {def} FROM deps\n\
             JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'\n\
             JOIN pg_namespace n ON n.oid = c.relnamespace\n\
             GROUP BY 1, 2, 3 ORDER BY max(deps.depth), 1, 2",
            catalog_match(relation)
        )
    }

    /// Locks `relation` and the views that read it (see `lock`), then reads the views'
    /// definitions: read before the locks, a definition could still name a table another
    /// session was swapping out, and be gone by the time it is used (measured). On Redshift,
    /// whose `LOCK` takes tables only, the statements that follow take their own locks.
    fn locked_dependents(
        &mut self,
        relation: &Relation,
        all: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Vec<Dependent>> {
        if self.flavour == Flavour::Redshift {
            // Its DDL takes the locks it needs; LOCK takes tables only.
            return self.dependents(relation, (all, true));
        }
        let mut views = self.dependents(relation, (all, false))?;
        loop {
            let order = views.iter().rev().map(|(v, _)| v);
            let read = |s: &mut Self| s.dependents(relation, (all, true));
            let now = self.lock((order, relation), read, log)?;
            if now.iter().map(|(v, _)| v).eq(views.iter().map(|(v, _)| v)) {
                return Ok(now);
            }
            views = now;
        }
    }

    /// Locks the views that read `relation` (the outermost first), then `relation`, and
    /// runs `then` under the locks (in the same message): readers of a view lock it before
    /// what it reads, and locking in their order means a reader and the build never wait for
    /// each other (a deadlock, measured).
    fn lock<'r, T>(
        &mut self,
        (views, relation): (impl Iterator<Item = &'r Relation>, &'r Relation),
        mut then: impl FnMut(&mut Self) -> DbResult<T>,
        log: &mut Vec<String>,
    ) -> DbResult<T> {
        let order: Vec<String> = views.chain([relation]).map(rel).collect();
        let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", order.join(", "));
        // A reader holding the table past `lock_timeout` makes the lock fail; a long query
        // usually ends soon after. And locking a view locks what it reads, so two swaps of
        // tables one view reads can deadlock (the server stops one). Either way the lock is
        // tried again (in a savepoint: the build stays, the locks taken so far are let go)
        // before the node gives up.
        let retried = |m: &str| m.contains("lock timeout") || m.contains("deadlock detected");
        let mut attempt = 1;
        loop {
            let locked = self.guarded(|s| {
                s.defer(&lock, log);
                then(s)
            });
            match locked {
                Err(DbError::Failed(m)) if retried(&m) && attempt < LOCK_TRIES => {
                    log.push(format!(
                        "-- {}; trying again",
                        m.lines().next().unwrap_or("")
                    ));
                    // Apart in time, so that two sessions do not meet again in step.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::from(d.subsec_micros() % 200));
                    let wait = (250 << (2 * (attempt - 1))) + jitter;
                    std::thread::sleep(Duration::from_millis(wait));
                    attempt += 1;
                }
                Err(DbError::Failed(m)) if m.contains("lock timeout") => {
                    return Err(DbError::Failed(format!(
                        "{m}\nreaders of {relation} held it past lock_timeout ({}) {LOCK_TRIES} \
                         times: the previous version stays published; raise `lock_timeout` in \
                         the target, or build when the readers are done",
                        self.shared.lock_timeout
                    )));
                }
                done => return done,
            }
        }
    }

    /// Runs `drop` (which takes the views `deps` with it), then `create`, then creates the
    /// views again, in order, each with the privileges it had; one that no longer builds (it
    /// read a column that is gone) stays dropped, and the log says so.
    fn drop_and_recreate(
        &mut self,
        (drop, deps): (String, Vec<Dependent>),
        create: impl FnOnce(&mut Self, &mut Vec<String>) -> DbResult<()>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let mut held = Vec::with_capacity(deps.len());
        for (view, _) in &deps {
            held.push(self.held_grants(view)?);
        }
        self.run(&drop, log)?;
        create(self, log)?;
        for ((view, def), grants) in deps.iter().zip(held) {
            let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(view), body(def));
            // Where a failure loses the transaction (Redshift, an interrupt), the node fails.
            match self.guarded(|s| s.run(&create, log)) {
                Err(DbError::Failed(e)) => {
                    log.push(format!("-- view {view} dropped: it no longer builds: {e}"));
                    continue;
                }
                other => other?,
            }
            for (privilege, kind, name) in grants {
                let to = self.flavour.grantee((&kind, &name));
                let grant = format!(
                    "GRANT {} ON {} TO {to}",
                    privilege.to_uppercase(),
                    rel(view)
                );
                self.run(&grant, log)?;
            }
        }
        Ok(())
    }

    /// Drops `relation` (of kind `old`) with the views that read it, runs `create`, and
    /// creates the views again.
    fn replace_dropping(
        &mut self,
        (relation, old): (&Relation, RelKind),
        create: impl FnOnce(&mut Self, &mut Vec<String>) -> DbResult<()>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let deps = self.locked_dependents(relation, true, log)?;
        let cascade = if deps.is_empty() { "" } else { " CASCADE" };
        let drop = format!("DROP {} {}{cascade}", kind_word(old), rel(relation));
        self.drop_and_recreate((drop, deps), create, log)
    }

    /// `CREATE OR REPLACE VIEW`, or, when the view's columns changed in a way PostgreSQL
    /// refuses to replace (or it was a table), dropped and created with its dependents.
    fn create_view(
        &mut self,
        relation: &Relation,
        sql: &str,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let late = match self.layout.bind {
            true => "",
            false => "\nWITH NO SCHEMA BINDING",
        };
        let create = format!(
            "CREATE OR REPLACE VIEW {} AS\n{}{late}",
            rel(relation),
            body(sql)
        );
        let replaced = match replaces {
            // Nothing to fall back to: no savepoint needed.
            None => self.run(&create, log),
            // Without a savepoint to fall back from, straight to dropping and creating.
            Some(RelKind::View) if self.flavour.savepoints() => {
                self.guarded(|s| s.run(&create, log))
            }
            Some(_) => Err(DbError::Failed(String::new())),
        };
        match (replaced, replaces) {
            (Ok(()), _) => Ok(()),
            (Err(e), None) => Err(e),
            (Err(_), Some(old)) => {
                self.replace_dropping((relation, old), |s, log| s.run(&create, log), log)
            }
        }
    }

    /// Swaps the table built as `staged` in for `relation` (of kind `old`), in the open
    /// transaction: the views reading the old table are re-pointed to the new one.
    fn swap_in(
        &mut self,
        staged: &Relation,
        (relation, old): (&Relation, RelKind),
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let rename = |s: &mut Self, log: &mut Vec<String>| {
            let to = quote(&relation.name);
            s.run(&format!("ALTER TABLE {} RENAME TO {to}", rel(staged)), log)
        };
        if old == RelKind::View {
            return self.replace_dropping((relation, old), rename, log);
        }
        if self.flavour == Flavour::Postgres {
            let timeout = format!(
                "SET LOCAL lock_timeout = {}",
                literal(&self.shared.lock_timeout)
            );
            self.defer(&timeout, log);
        }
        let deps = self.locked_dependents(relation, false, log)?;
        // Without a savepoint (Redshift) a view that cannot be re-pointed would lose the
        // transaction: when the columns changed, straight to dropping and creating the views.
        let unsure = !self.flavour.savepoints() && !deps.is_empty();
        if unsure && Session::columns(self, staged)? != Session::columns(self, relation)? {
            let chain = self.locked_dependents(relation, true, log)?;
            let drop = format!("DROP TABLE {} CASCADE", rel(relation));
            return self.drop_and_recreate((drop, chain), rename, log);
        }
        let aside = suffixed(relation, OLD_SUFFIX);
        let swapped = self.guarded(|s| {
            let aside_name = quote(&aside.name);
            s.defer(
                &format!("ALTER TABLE {} RENAME TO {aside_name}", rel(relation)),
                log,
            );
            rename(s, log)?;
            let repoint: Vec<String> = deps
                .iter()
                .map(|(view, def)| {
                    format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(view), body(def))
                })
                .collect();
            match repoint.is_empty() {
                true => Ok(()),
                false => s.run(&repoint.join(";\n"), log),
            }
        });
        match swapped {
            Ok(()) => {
                self.defer(&format!("DROP TABLE {}", rel(&aside)), log);
                Ok(())
            }
            // A view's column changed type (the renames are undone with the savepoint): drop
            // the old table with the chain of views, and create them again on the new one
            // from their definitions, read while they still named the table.
            Err(DbError::Failed(_)) => {
                let chain = self.locked_dependents(relation, true, log)?;
                let drop = format!("DROP TABLE {} CASCADE", rel(relation));
                self.drop_and_recreate((drop, chain), rename, log)
            }
            Err(e) => Err(e),
        }
    }

    /// Builds `relation` in the open transaction; the rows of a table.
    fn build(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        log: &mut Vec<String>,
    ) -> DbResult<Option<u64>> {
        let created = match build {
            Build::View(sql) => {
                self.create_view(relation, sql, replaces, log)?;
                return Ok(None);
            }
            Build::Increment(inc) => return Ok(Some(self.increment(relation, &inc, log)?)),
            Build::Snapshot(spec) if replaces == Some(RelKind::Table) => {
                return Ok(Some(self.update_snapshot(relation, spec, log)?));
            }
            Build::Table(sql) => self.create_table(relation, sql, log)?,
            Build::Seed(csv) => self.load_csv(relation, csv, log)?,
            Build::Snapshot(spec) => self.create_snapshot(relation, spec, log)?,
        };
        self.create_indexes(relation, log)?;
        Ok(Some(created))
    }

    /// The layout's indexes on a table just created. Each is named after the table and a hash
    /// of the moment, so that it never meets the name of the index of a table it replaces.
    fn create_indexes(&mut self, table: &Relation, log: &mut Vec<String>) -> DbResult<()> {
        use sha2::Digest;
        let base = table.name.replace(NEW_SUFFIX, "");
        let cut = (0..=base.len().min(40))
            .rev()
            .find(|&i| base.is_char_boundary(i));
        let base = &base[..cut.unwrap_or(0)];
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (i, index) in self.layout.indexes.clone().iter().enumerate() {
            let hash = sha2::Sha256::digest(format!("{nanos}:{i}:{index:?}").as_bytes());
            let short = crate::hex(&hash[..4]);
            let columns: Vec<String> = index.columns.iter().map(|c| quote(c)).collect();
            let create = format!(
                "CREATE {}INDEX {} ON {}{} ({})",
                if index.unique { "UNIQUE " } else { "" },
                quote(&format!("{base}_{short}_idx")),
                rel(table),
                index
                    .method
                    .as_ref()
                    .map(|m| format!(" USING {m}"))
                    .unwrap_or_default(),
                columns.join(", ")
            );
            self.run(&create, log)?;
        }
        Ok(())
    }

    /// Creates the seed's table with the types its values have (or `column_types` say) and
    /// loads the file: with `COPY … FROM STDIN` on PostgreSQL, a value the column's type
    /// refuses failing the load with its line in the file; with multi-row `INSERT`s on
    /// Redshift, into text and numbers sized to the values.
    fn load_csv(
        &mut self,
        into: &Relation,
        csv: &CsvSource,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let data = match &csv.decoded {
            Some(text) => text.clone().into_bytes(),
            None => std::fs::read(&csv.path)
                .map_err(|e| DbError::Failed(format!("cannot read {}: {e}", csv.path.display())))?,
        };
        let columns = seed::columns(&data, csv)?;
        let records = match self.flavour {
            Flavour::Postgres => None,
            Flavour::Redshift => Some(seed::records(&data, csv, columns.len())?),
        };
        let columns = match &records {
            Some(records) => seed::sized(columns, records),
            None => columns,
        };
        let defs: Vec<String> = columns
            .iter()
            .map(|(c, t)| format!("{} {t}", quote(c)))
            .collect();
        self.run(
            &format!(
                "CREATE TABLE {} ({}){}",
                rel(into),
                defs.join(", "),
                attributes(&self.layout)
            ),
            log,
        )?;
        if let Some(records) = records {
            return self.insert_rows(into, &records, log);
        }
        let copy = format!(
            "COPY {} FROM STDIN (FORMAT csv, HEADER {}, DELIMITER {}, QUOTE {})",
            rel(into),
            csv.header,
            literal(&csv.delimiter),
            literal(&csv.quote)
        );
        log.push(copy.clone());
        let loaded = self.copy_in(&copy, &data);
        self.lost(loaded.map_err(|e| bad_row(e, failed)))
    }

    /// Inserts `records` 500 rows a statement; a statement the server refuses fails the load
    /// at the line its rows begin.
    fn insert_rows(
        &mut self,
        into: &Relation,
        records: &[seed::Record],
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let mut loaded = 0;
        for batch in records.chunks(500) {
            let rows: Vec<String> = batch
                .iter()
                .map(|r| {
                    let values: Vec<String> = r.values.iter().map(|v| self.value(v)).collect();
                    format!("({})", values.join(", "))
                })
                .collect();
            let insert = format!("INSERT INTO {} VALUES\n{}", rel(into), rows.join(",\n"));
            let first = batch.first().map_or(0, |r| r.line);
            loaded += self.exec(&insert, log).map_err(|e| match e {
                DbError::Failed(m) | DbError::TransactionLost(m) => DbError::BadRow {
                    line: first,
                    column: None,
                    message: format!("one of the {} rows from this line: {m}", batch.len()),
                },
                other => other,
            })?;
        }
        Ok(loaded)
    }

    /// A seed's value as a literal: empty is NULL; Redshift reads a backslash in a literal as
    /// an escape, PostgreSQL as itself.
    fn value(&self, v: &str) -> String {
        match (v.is_empty(), self.flavour) {
            (true, _) => "NULL".into(),
            (false, Flavour::Postgres) => literal(v),
            (false, Flavour::Redshift) => literal(&v.replace('\\', "\\\\")),
        }
    }

    fn copy_in(&mut self, copy: &str, data: &[u8]) -> Result<u64, postgres::Error> {
        // `run` sent what was deferred: the table was created just before.
        use std::io::Write;
        let mut writer = self.client.copy_in(copy)?;
        // A write error means the server refused the data: `finish` returns its error.
        let _ = writer.write_all(data);
        writer.finish()
    }
}

/// A grantee as the config names it (`group:g`, `role:r`, `user:u`, `name`): its kind
/// (`group`, `role`, `user`, `public`) and name.
fn grantee(spec: &str) -> (&'static str, String) {
    if spec.eq_ignore_ascii_case("public") {
        return ("public", "public".into());
    }
    match spec.split_once(':') {
        Some(("group", g)) => ("group", g.to_string()),
        Some(("role", r)) => ("role", r.to_string()),
        Some(("user", u)) => ("user", u.to_string()),
        _ => ("user", spec.to_string()),
    }
}

impl Flavour {
    /// How GRANT and REVOKE name a grantee of `kind`: PostgreSQL's groups, roles and users are
    /// all roles (it takes `GROUP g` too); Redshift's are three things.
    fn grantee(self, (kind, name): (&str, &str)) -> String {
        match (kind, self) {
            ("public", _) => "PUBLIC".into(),
            ("group", _) => format!("GROUP {}", quote(name)),
            ("role", Flavour::Redshift) => format!("ROLE {}", quote(name)),
            _ => quote(name),
        }
    }

    /// Whether two grantees are the same: on PostgreSQL, by name alone.
    fn same_grantee(self, a: (&str, &str), b: (&str, &str)) -> bool {
        match self {
            Flavour::Postgres => a.1 == b.1,
            Flavour::Redshift => a == b,
        }
    }

    /// A query listing the privileges others hold on `relation`: privilege, grantee kind,
    /// grantee name.
    fn held_grants(self, relation: &Relation) -> String {
        match self {
            Flavour::Postgres => format!(
                "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'public' ELSE 'role' END, \
                 CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, \
                 aclexplode(c.relacl) a WHERE {} AND a.grantee <> c.relowner",
                catalog_match(relation)
            ),
            Flavour::Redshift => format!(
                "SELECT privilege_type, identity_type, identity_name FROM svv_relation_privileges \
                 WHERE namespace_name = {} AND relation_name = {} AND identity_name <> current_user",
                literal(&relation.schema),
                literal(&relation.name)
            ),
        }
    }
}

impl PgSession {
    /// The privileges others hold on `relation`: (privilege, grantee kind, grantee name).
    fn held_grants(&mut self, relation: &Relation) -> DbResult<Vec<(String, String, String)>> {
        let sql = self.flavour.held_grants(relation);
        Ok(Statements::rows(self, &sql)?
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                (v(0).to_lowercase(), v(1).to_lowercase(), v(2))
            })
            .collect())
    }

    /// Gives each privilege to exactly the grantees `grants` names: grants what is missing,
    /// revokes what is no longer named (a table swapped in has none of the old one's).
    fn grant(
        &mut self,
        relation: &Relation,
        grants: &[(String, Vec<String>)],
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let held = self.held_grants(relation)?;
        let wanted: Vec<(String, (&str, String))> = grants
            .iter()
            .flat_map(|(p, who)| who.iter().map(move |g| (p.to_lowercase(), grantee(g))))
            .collect();
        let target = rel(relation);
        let f = self.flavour;
        for (p, kind, name) in &held {
            let held = (kind.as_str(), name.as_str());
            let named =
                |(wp, (k, n)): &(String, (&str, String))| wp == p && f.same_grantee((k, n), held);
            if !wanted.iter().any(named) {
                let revoke = format!(
                    "REVOKE {} ON {target} FROM {}",
                    p.to_uppercase(),
                    f.grantee(held)
                );
                self.run(&revoke, log)?;
            }
        }
        for (p, (kind, name)) in &wanted {
            let want = (*kind, name.as_str());
            let holds =
                |(hp, k, n): &(String, String, String)| hp == p && f.same_grantee((k, n), want);
            if !held.iter().any(holds) {
                let grant = format!(
                    "GRANT {} ON {target} TO {}",
                    p.to_uppercase(),
                    f.grantee(want)
                );
                self.run(&grant, log)?;
            }
        }
        Ok(())
    }
}

/// Redshift's table attributes for `layout` (`BACKUP NO`, `DISTSTYLE`, `SORTKEY`); nothing
/// for the default layout, which is all other warehouses have.
fn attributes(layout: &Layout) -> String {
    let mut out = String::new();
    if !layout.backup {
        out.push_str(" BACKUP NO");
    }
    if let Some(dist) = &layout.dist {
        let style = dist.to_ascii_lowercase();
        out.push_str(&match style.as_str() {
            "all" | "even" | "auto" => format!(" DISTSTYLE {}", style.to_uppercase()),
            _ => format!(" DISTSTYLE KEY DISTKEY ({})", quote(dist)),
        });
    }
    if !layout.sort.is_empty() {
        let keys: Vec<String> = layout.sort.iter().map(|c| quote(c)).collect();
        let kind = layout.sort_type.as_deref().unwrap_or("compound");
        out.push_str(&format!(
            " {} SORTKEY ({})",
            kind.to_uppercase(),
            keys.join(", ")
        ));
    }
    out
}

impl PgSession {
    /// `for_each_row` without `COPY … TO STDOUT` (Redshift): a cursor read 10,000 rows at a
    /// time, in a transaction of its own unless one is open.
    fn through_cursor(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<()> {
        self.flush()?;
        let own = !self.open;
        let begin = if own { "BEGIN; " } else { "" };
        let declare = format!("{begin}DECLARE xform_rows CURSOR FOR\n{}", body(sql));
        let read = self
            .client
            .batch_execute(&declare)
            .map_err(failed)
            .and_then(|()| {
                loop {
                    let rows = query_rows(
                        &mut self.client,
                        "FETCH FORWARD 10000 FROM xform_rows",
                        None,
                    )?;
                    let full = rows.rows.len() == 10_000;
                    for row in rows.rows {
                        if !each(row) {
                            return Ok(());
                        }
                    }
                    if !full {
                        return Ok(());
                    }
                }
            });
        let end = if own { "ROLLBACK" } else { "CLOSE xform_rows" };
        let closed = self.client.batch_execute(end).map_err(failed);
        self.lost(read.and(closed))
    }
}

/// Incremental runs and snapshots: the shared statements over PostgreSQL's primitives.
impl Statements for PgSession {
    fn dialect(&self) -> &'static dyn Dialect {
        self.flavour.dialect()
    }

    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        PgSession::run(self, sql, log)
    }

    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        PgSession::exec(self, sql, log)
    }

    fn rows(&mut self, sql: &str) -> DbResult<Rows> {
        let sql = self.after_deferred(sql);
        let rows = query_rows(&mut self.client, &sql, None);
        self.lost(rows)
    }

    fn temp_table(&mut self, name: &str, sql: &str, log: &mut Vec<String>) -> DbResult<String> {
        let temp = quote(name);
        // Redshift has no ON COMMIT DROP: the table lives to the end of the transaction (a
        // failure) or to `DROP TABLE` at the end of the statements that use it.
        let drop = match self.flavour {
            Flavour::Postgres => " ON COMMIT DROP",
            Flavour::Redshift => "",
        };
        let create = format!("CREATE TEMP TABLE {temp}{drop} AS\n{}", body(sql));
        PgSession::run(self, &create, log)?;
        Ok(temp)
    }

    fn create_table(
        &mut self,
        relation: &Relation,
        sql: &str,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let create = format!(
            "CREATE TABLE {}{} AS\n{}",
            rel(relation),
            attributes(&self.layout),
            body(sql)
        );
        PgSession::exec(self, &create, log)
    }
}

impl Session for PgSession {
    fn relations(&mut self, schemas: &[String]) -> DbResult<Vec<(Relation, RelKind)>> {
        if schemas.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = schemas.iter().map(|s| literal(s)).collect();
        let sql = format!(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname IN ({}) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            list.join(", ")
        );
        let named = named_rows(Statements::rows(self, &sql)?);
        Ok(named
            .map(|(relation, kind)| match kind.as_str() {
                "v" | "m" => (relation, RelKind::View),
                _ => (relation, RelKind::Table),
            })
            .collect())
    }

    fn drop_leftovers(&mut self, _: &[String], log: &mut Vec<String>) -> DbResult<Vec<Relation>> {
        // Staged tables live only inside uncommitted transactions, so a killed run leaves
        // none; tables of those names are dropped all the same, should one ever be committed.
        let sql = format!(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
             AND (c.relname LIKE {} OR c.relname LIKE {})",
            literal(&format!("%{}", NEW_SUFFIX.replace('_', "\\_"))),
            literal(&format!("%{}", OLD_SUFFIX.replace('_', "\\_")))
        );
        let leftovers: Vec<Relation> = Statements::rows(self, &sql)?
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                Relation::new(v(0), v(1))
            })
            .collect();
        for r in &leftovers {
            self.run(&format!("DROP TABLE IF EXISTS {}", rel(r)), log)?;
        }
        Ok(leftovers)
    }

    fn create_schemas(&mut self, schemas: &[String], log: &mut Vec<String>) -> DbResult<()> {
        // Only those missing: creating one needs a privilege a user of granted schemas lacks.
        let list: Vec<String> = schemas.iter().map(|s| literal(s)).collect();
        let sql = format!(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ({})",
            list.join(", ")
        );
        let have = match schemas.is_empty() {
            true => Rows::default(),
            false => Statements::rows(self, &sql)?,
        };
        let exists = |s: &str| {
            have.rows
                .iter()
                .any(|r| r.first().cloned().flatten().as_deref() == Some(s))
        };
        for s in schemas.iter().filter(|s| !exists(s)) {
            self.run(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(s)), log)?;
        }
        Ok(())
    }

    fn grant_schemas(&mut self, grants: &[SchemaGrants], log: &mut Vec<String>) -> DbResult<()> {
        if grants.is_empty() {
            return Ok(());
        }
        self.begin(log)?;
        let granted = grants.iter().try_for_each(|(schema, privileges)| {
            privileges.iter().try_for_each(|(p, grantees)| {
                grantees.iter().try_for_each(|g| {
                    let (kind, name) = grantee(g);
                    let to = self.flavour.grantee((kind, &name));
                    let (p, s) = (p.to_uppercase(), quote(schema));
                    let on_schema = matches!(p.as_str(), "USAGE" | "CREATE");
                    let statements = match on_schema {
                        true => vec![format!("GRANT {p} ON SCHEMA {s} TO {to}")],
                        false => vec![
                            format!("GRANT {p} ON ALL TABLES IN SCHEMA {s} TO {to}"),
                            format!(
                                "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {p} ON TABLES TO {to}"
                            ),
                        ],
                    };
                    statements.iter().try_for_each(|sql| self.run(sql, log))
                })
            })
        });
        match granted.and_then(|()| self.commit(log)) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.rollback(log);
                Err(e)
            }
        }
    }

    fn stage(
        &mut self,
        relation: &Relation,
        build: Build<'_>,
        replaces: Option<RelKind>,
        (_audited, around): (bool, &Around),
        log: &mut Vec<String>,
    ) -> DbResult<Staged> {
        // Everything happens in one transaction that no one else sees before `publish`; a
        // new table is built beside the one it replaces, which stays readable by others
        // (and unlocked) while the new one is tested.
        let in_place = matches!(build, Build::View(_) | Build::Increment(_))
            || matches!(build, Build::Snapshot(_)) && replaces == Some(RelKind::Table);
        let target = match (in_place, replaces) {
            (false, Some(_)) => suffixed(relation, NEW_SUFFIX),
            _ => relation.clone(),
        };
        let kind = kind_built(&build);
        self.layout = around.layout.clone();
        self.begin(log)?;
        let built = around
            .pre
            .iter()
            .try_for_each(|sql| self.run(sql, log))
            .and_then(|()| self.build(&target, build, replaces, log));
        match built {
            Ok(rows) => Ok(Staged {
                rows,
                readable_as: target,
                relation: relation.clone(),
                replaces,
                kind,
                around: around.clone(),
            }),
            Err(e) => {
                self.rollback(log);
                Err(e)
            }
        }
    }

    fn publish(&mut self, staged: Staged, log: &mut Vec<String>) -> DbResult<Staged> {
        let swapped = match (staged.readable_as != staged.relation, staged.replaces) {
            (true, Some(old)) => self.swap_in(&staged.readable_as, (&staged.relation, old), log),
            _ => Ok(()),
        };
        let finished = swapped
            .and_then(|()| {
                staged
                    .around
                    .post
                    .iter()
                    .try_for_each(|sql| self.run(sql, log))
            })
            .and_then(|()| match &staged.around.grants {
                Some(grants) => self.grant(&staged.relation, grants, log),
                None => Ok(()),
            })
            .and_then(|()| {
                let docs = &staged.around.docs;
                let comments = statements::comments(
                    self.flavour.dialect(),
                    &staged.relation,
                    staged.kind,
                    docs,
                );
                comments.iter().try_for_each(|sql| self.run(sql, log))
            })
            .and_then(|()| {
                let dialect = self.flavour.dialect();
                let record = statements::record_build(dialect, staged.around.record.as_ref());
                record.iter().try_for_each(|sql| self.run(sql, log))
            });
        match finished.and_then(|()| self.commit(log)) {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.rollback(log);
                Err(e)
            }
        }
    }

    fn discard(&mut self, _staged: Staged, log: &mut Vec<String>) -> DbResult<()> {
        self.rollback(log);
        Ok(())
    }

    fn count_failures(&mut self, queries: &[super::super::FailureQuery]) -> DbResult<Vec<u64>> {
        let sql = statements::failure_counts(queries);
        let rows = self.guarded(|s| Statements::rows(s, &sql))?;
        Ok(statements::counts_by_query(queries.len(), rows.rows))
    }

    fn store_failures(
        &mut self,
        into: &Relation,
        sql: &str,
        limit: Option<u64>,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let drop = format!("DROP TABLE IF EXISTS {}", rel(into));
        let create = format!("CREATE TABLE {} AS\n{}", rel(into), limited(sql, limit));
        self.guarded(|s| {
            s.run(&drop, log)?;
            s.exec(&create, log)
        })
    }

    fn columns(&mut self, relation: &Relation) -> DbResult<Option<Vec<(String, String)>>> {
        let sql = format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE {} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            catalog_match(relation)
        );
        let rows = self.rows(&sql)?;
        let columns: Vec<(String, String)> = rows
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                (v(0), v(1))
            })
            .collect();
        Ok((!columns.is_empty()).then_some(columns))
    }

    fn max_loaded_at(
        &mut self,
        from: &str,
        loaded_at: &str,
        filter: Option<&str>,
    ) -> DbResult<Option<f64>> {
        let sql = self.flavour.dialect().latest_epoch(from, loaded_at, filter);
        let value = Statements::rows(self, &sql)?
            .rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten());
        value
            .map(|v| v.parse::<f64>())
            .transpose()
            .map_err(|e| DbError::Failed(format!("the latest loaded_at is not a time: {e}")))
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        each: &mut dyn FnMut(Vec<Option<String>>) -> bool,
    ) -> DbResult<()> {
        use std::io::BufRead;
        if self.flavour == Flavour::Redshift {
            return self.through_cursor(sql, each);
        }
        self.flush()?;
        let copy = format!("COPY (\n{}\n) TO STDOUT", body(sql));
        let reader = self.client.copy_out(&copy).map_err(failed)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line);
            match read {
                Ok(0) => return Ok(()),
                Ok(_) if !each(copy_fields(&line)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(DbError::Failed(e.to_string())),
            }
        }
    }

    fn execute(&mut self, sql: &str) -> DbResult<()> {
        let sql = self.after_deferred(sql);
        let done = self.client.batch_execute(&sql).map_err(failed);
        self.lost(done)
    }

    fn build_records(&mut self, table: &Relation) -> DbResult<Option<Vec<BuildRecord>>> {
        match self.columns(table)? {
            Some(_) => statements::read_records(self, table).map(Some),
            None => Ok(None),
        }
    }

    fn keep_build_records(&mut self, table: &Relation, log: &mut Vec<String>) -> DbResult<()> {
        let sql = statements::create_records(self.flavour.dialect(), table);
        self.run(&sql, log)?;
        // Each publish replaces its relation's record: found by index, not by a scan of all.
        match self.flavour {
            Flavour::Postgres => {
                let index = format!(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
                    quote(&format!("{}_relation", table.name)),
                    rel(table),
                    quote("relation")
                );
                self.run(&index, log)
            }
            Flavour::Redshift => Ok(()),
        }
    }

    fn record_tests(
        &mut self,
        table: &Relation,
        tests: &[(String, String)],
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let updates = statements::tests_recorded(self.flavour.dialect(), table, tests);
        let recorded = self
            .begin(log)
            .and_then(|()| updates.iter().try_for_each(|u| self.run(u, log)))
            .and_then(|()| self.commit(log));
        if recorded.is_err() {
            self.rollback(log);
        }
        recorded
    }

    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        // No bound where the caller wants every row (Redshift's LIMIT takes no such number).
        let every = limit >= u32::MAX as usize;
        let bound = if every {
            String::new()
        } else {
            format!(" LIMIT {limit}")
        };
        let wrapped = format!("SELECT * FROM (\n{}\n) AS q{bound}", body(sql));
        // A macro's query while a test renders runs in the job's transaction: one that fails
        // must not take the transaction with it.
        self.guarded(|s| {
            let sent = s.after_deferred(&wrapped);
            let read = query_rows(&mut s.client, &sent, Some(limit));
            s.lost(read)
        })
    }

    fn query_typed(&mut self, sql: &str) -> DbResult<Rows> {
        let mut rows = self.query(sql, i64::MAX as usize)?;
        // The text protocol says no types: the statement, prepared, does (`bool`, `int4`).
        let prepared = self.guarded(|s| s.client.prepare(body(sql)).map_err(failed));
        if let Ok(statement) = prepared {
            let types = statement
                .columns()
                .iter()
                .map(|c| c.type_().name().to_string());
            rows.types = types.collect();
        }
        Ok(rows)
    }
}

/// A `COPY` refused a value: its line in the file and its column, from the server's
/// context (`COPY orders, line 3, column amount: "x"`), else the plain error.
fn bad_row(e: postgres::Error, otherwise: fn(postgres::Error) -> DbError) -> DbError {
    let Some((db, context)) = e.as_db_error().and_then(|d| Some((d, d.where_()?))) else {
        return otherwise(e);
    };
    let Some((_, rest)) = context.split_once(", line ") else {
        return otherwise(e);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(line) = digits.parse::<u64>() else {
        return otherwise(e);
    };
    let column = rest
        .split_once(", column ")
        .map(|(_, c)| c.split(':').next().unwrap_or(c).to_string());
    DbError::BadRow {
        line,
        column,
        message: db.message().to_string(),
    }
}
