//! PostgreSQL's engine (see the module doc of `adapter::postgres` for how it keeps xform's
//! guarantees).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::{CancelToken, Client, NoTls, SimpleQueryMessage};

use super::{Settings, SslMode, seed};
use crate::adapter::statements::{self, Statements, body, kind_word, limited, lit as literal};
use crate::adapter::{
    Around, Build, CsvSource, DbError, DbResult, RelKind, Relation, Rows, Session, Staged,
    Warehouse, kind_built,
};
use crate::sql::{Dialect, Kind};

fn dialect() -> &'static dyn Dialect {
    Kind::Postgres.dialect()
}

fn quote(ident: &str) -> String {
    dialect().quote(ident)
}

fn rel(r: &Relation) -> String {
    dialect().relation(r)
}

/// PostgreSQL's longest identifier, in bytes; longer names are cut silently.
const MAX_IDENT: usize = 63;

/// A table built beside the published one carries this suffix until it is swapped in; the
/// table it replaces, the other. Neither is ever committed.
const NEW_SUFFIX: &str = "__xform_new";
const OLD_SUFFIX: &str = "__xform_old";

/// How connections are encrypted.
#[derive(Clone)]
enum Tls {
    None,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// What the warehouse and its sessions share.
struct Shared {
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
            config,
            tls: tls(s)?,
            lock_timeout: s.lock_timeout.clone(),
            lock_name: s.lock_name.clone(),
            cancels: Mutex::default(),
            lock: Mutex::default(),
        });
        let mut client = shared.connect()?;
        let version = scalar(&mut client, "SELECT version()")?.unwrap_or_default();
        if version.contains("Redshift") {
            return Err(DbError::Failed(format!(
                "{}:{} is a Amazon Redshift server, not PostgreSQL: Redshift lacks much of what a \
                 postgres target uses (savepoints, COPY FROM STDIN, MERGE on NULL keys). xform \
                 does not build into Redshift yet",
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
        let _ = client.batch_execute("SET client_connection_check_interval = '1s'");
        self.shared
            .cancels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client.cancel_token());
        Ok(Box::new(PgSession {
            client,
            shared: self.shared.clone(),
            open: false,
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
        let key = literal(&format!("xform:{}", self.shared.lock_name));
        let sql = format!("SELECT pg_try_advisory_lock(hashtext({key}))");
        if scalar(&mut client, &sql)?.as_deref() == Some("t") {
            *held = Some(client);
            return Ok(());
        }
        let holder = lock_holder(&mut client, &key).unwrap_or_default();
        Err(DbError::Failed(format!(
            "another xform run holds this target (its run lock `xform:{}`){holder}; wait for \
             it to finish (or stop it), or use another target",
            self.shared.lock_name
        )))
    }
}

/// Who holds the run lock: " (xform (pid 123) from 10.0.0.5, since 12:00:01)".
fn lock_holder(client: &mut Client, key: &str) -> DbResult<String> {
    let sql = format!(
        "SELECT a.application_name, coalesce(host(a.client_addr), 'this host'), \
         to_char(a.backend_start, 'HH24:MI:SS') FROM pg_locks l JOIN pg_stat_activity a ON \
         a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objid = \
         (hashtext({key})::bigint & 4294967295) LIMIT 1"
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
    shared: Arc<Shared>,
    /// Whether a transaction is open.
    open: bool,
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
    let short: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
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

impl PgSession {
    /// Executes one statement (or several, `;`-separated), appending it to `log`.
    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        log.push(sql.to_string());
        let done = self.client.batch_execute(sql).map_err(failed);
        self.lost(done)
    }

    /// Executes a statement and returns the rows it changed or created (its command tag).
    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        log.push(sql.to_string());
        let done = self.client.simple_query(sql).map_err(failed).map(|ms| {
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
        self.run("BEGIN", log)?;
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
        for _ in 0..100 {
            match self.client.batch_execute("ROLLBACK").map_err(failed) {
                Err(DbError::Interrupted) => continue,
                _ => return,
            }
        }
    }

    /// Runs `f` in a savepoint of the open transaction (if one is open): when it fails, the
    /// transaction goes on without what it did, and the error is an ordinary failure.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> DbResult<T>) -> DbResult<T> {
        if !self.open {
            return f(self);
        }
        let mut log = Vec::new();
        self.run("SAVEPOINT xform_guard", &mut log)?;
        match f(self) {
            Ok(v) => {
                self.run("RELEASE SAVEPOINT xform_guard", &mut log)?;
                Ok(v)
            }
            Err(DbError::TransactionLost(m) | DbError::Failed(m)) => {
                self.run("ROLLBACK TO SAVEPOINT xform_guard", &mut log)?;
                Err(DbError::Failed(m))
            }
            Err(e) => Err(e),
        }
    }

    /// The views that read `relation`: those reading it directly, or (`all`) every view that
    /// depends on it through others too, in the order they can be created.
    fn dependents(&mut self, relation: &Relation, all: bool) -> DbResult<Vec<Relation>> {
        let oid = format!("{}::regclass", literal(&rel(relation)));
        let depth = if all { "" } else { "WHERE deps.depth = 1" };
        let sql = format!(
            "WITH RECURSIVE deps(oid, depth) AS (\n\
             SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid\n\
             WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = {oid}\n\
             AND d.classid = 'pg_rewrite'::regclass AND r.ev_class <> {oid}\n\
             UNION\n\
             SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d\n\
             ON d.refclassid = 'pg_class'::regclass AND d.refobjid = deps.oid\n\
             JOIN pg_rewrite r ON r.oid = d.objid\n\
             WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> deps.oid)\n\
             SELECT n.nspname, c.relname FROM deps\n\
             JOIN pg_class c ON c.oid = deps.oid AND c.relkind = 'v'\n\
             JOIN pg_namespace n ON n.oid = c.relnamespace {depth}\n\
             GROUP BY 1, 2 ORDER BY max(deps.depth), 1, 2"
        );
        let rows = Statements::rows(self, &sql)?;
        Ok(rows
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                Relation::new(v(0), v(1))
            })
            .collect())
    }

    /// Locks `relation` and the views that read it (see `lock`), then reads the views'
    /// definitions: read before the locks, a definition could still name a table another
    /// session was swapping out, and be gone by the time it is used (measured).
    fn locked_dependents(
        &mut self,
        relation: &Relation,
        all: bool,
        log: &mut Vec<String>,
    ) -> DbResult<Vec<Dependent>> {
        let mut views = self.dependents(relation, all)?;
        loop {
            self.lock(views.iter().rev(), relation, log)?;
            let now = self.dependents(relation, all)?;
            if now == views {
                break;
            }
            views = now;
        }
        let names: Vec<String> = views.iter().map(|v| literal(&rel(v))).collect();
        let sql = format!(
            "SELECT pg_get_viewdef(v::regclass) FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i",
            names.join(", ")
        );
        let defs = match views.is_empty() {
            true => Rows::default(),
            false => Statements::rows(self, &sql)?,
        };
        let defs = defs
            .rows
            .into_iter()
            .map(|r| r.into_iter().next().flatten().unwrap_or_default());
        Ok(views.into_iter().zip(defs).collect())
    }

    /// Locks the views that read `relation` (the outermost first), then `relation`: readers of
    /// a view lock it before what it reads, and locking in their order means a reader and the
    /// build never wait for each other (a deadlock, measured).
    fn lock<'r>(
        &mut self,
        views: impl Iterator<Item = &'r Relation>,
        relation: &'r Relation,
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let order: Vec<String> = views.chain([relation]).map(rel).collect();
        let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", order.join(", "));
        self.run(&lock, log)
    }

    /// Creates the dependent views again, in order; one that no longer builds (it read a
    /// column that is gone) stays dropped, and the log says so.
    fn recreate(&mut self, deps: &[Dependent], log: &mut Vec<String>) -> DbResult<()> {
        for (view, def) in deps {
            let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(view), body(def));
            if let Err(e) = self.guarded(|s| s.run(&create, log)) {
                log.push(format!("-- view {view} dropped: it no longer builds: {e}"));
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
        self.run(
            &format!("DROP {} {} CASCADE", kind_word(old), rel(relation)),
            log,
        )?;
        create(self, log)?;
        self.recreate(&deps, log)
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
        let create = format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(relation), body(sql));
        let replaced = match replaces {
            // Nothing to fall back to: no savepoint needed.
            None => self.run(&create, log),
            Some(RelKind::Table) => Err(DbError::Failed(String::new())),
            Some(RelKind::View) => self.guarded(|s| s.run(&create, log)),
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
        let timeout = format!(
            "SET LOCAL lock_timeout = {}",
            literal(&self.shared.lock_timeout)
        );
        self.run(&timeout, log)?;
        let deps = self.locked_dependents(relation, false, log)?;
        let aside = suffixed(relation, OLD_SUFFIX);
        self.run(
            &format!(
                "ALTER TABLE {} RENAME TO {}",
                rel(relation),
                quote(&aside.name)
            ),
            log,
        )?;
        rename(self, log)?;
        let repointed = self.guarded(|s| {
            deps.iter().try_for_each(|(view, def)| {
                s.run(
                    &format!("CREATE OR REPLACE VIEW {} AS\n{}", rel(view), body(def)),
                    log,
                )
            })
        });
        match repointed {
            Ok(()) => self.run(&format!("DROP TABLE {}", rel(&aside)), log),
            // A view's column changed type: drop the chain with the old table, create it again.
            Err(_) => {
                let chain = self.locked_dependents(&aside, true, log)?;
                self.run(&format!("DROP TABLE {} CASCADE", rel(&aside)), log)?;
                self.recreate(&chain, log)
            }
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
        Ok(match build {
            Build::View(sql) => {
                self.create_view(relation, sql, replaces, log)?;
                None
            }
            Build::Table(sql) => Some(self.create_table(relation, sql, log)?),
            Build::Seed(csv) => Some(self.load_csv(relation, csv, log)?),
            Build::Increment(inc) => Some(self.increment(relation, &inc, log)?),
            Build::Snapshot(spec) if replaces == Some(RelKind::Table) => {
                Some(self.update_snapshot(relation, spec, log)?)
            }
            Build::Snapshot(spec) => Some(self.create_snapshot(relation, spec, log)?),
        })
    }

    /// Creates the seed's table with the types its values have (or `column_types` say) and
    /// loads the file with `COPY … FROM STDIN`; a value the column's type refuses fails the
    /// load with its line in the file.
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
        let defs: Vec<String> = columns
            .iter()
            .map(|(c, t)| format!("{} {t}", quote(c)))
            .collect();
        self.run(
            &format!("CREATE TABLE {} ({})", rel(into), defs.join(", ")),
            log,
        )?;
        let copy = format!(
            "COPY {} FROM STDIN (FORMAT csv, HEADER {}, DELIMITER {}, QUOTE {})",
            rel(into),
            csv.header,
            literal(&csv.delimiter),
            literal(&csv.quote)
        );
        log.push(copy.clone());
        let loaded = self.copy_in(&copy, &data);
        self.lost(loaded.map_err(|e| seed::bad_row(e, failed)))
    }

    fn copy_in(&mut self, copy: &str, data: &[u8]) -> Result<u64, postgres::Error> {
        use std::io::Write;
        let mut writer = self.client.copy_in(copy)?;
        // A write error means the server refused the data: `finish` returns its error.
        let _ = writer.write_all(data);
        writer.finish()
    }
}

/// A grantee as the config names it (`group:g`, `role:r`, `user:u`, `name`): how a GRANT
/// names it, and the role name the catalog shows.
fn grantee(spec: &str) -> (String, String) {
    if spec.eq_ignore_ascii_case("public") {
        return ("PUBLIC".into(), "public".into());
    }
    match spec.split_once(':') {
        Some(("group", g)) => (format!("GROUP {}", quote(g)), g.to_string()),
        Some(("role" | "user", r)) => (quote(r), r.to_string()),
        _ => (quote(spec), spec.to_string()),
    }
}

impl PgSession {
    /// Gives each privilege to exactly the grantees `grants` names: grants what is missing,
    /// revokes what is no longer named (a table swapped in has none of the old one's).
    fn grant(
        &mut self,
        relation: &Relation,
        grants: &[(String, Vec<String>)],
        log: &mut Vec<String>,
    ) -> DbResult<()> {
        let sql = format!(
            "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'public' ELSE \
             pg_get_userbyid(a.grantee) END FROM pg_class c, aclexplode(c.relacl) a \
             WHERE c.oid = {}::regclass AND a.grantee <> c.relowner",
            literal(&rel(relation))
        );
        let held: Vec<(String, String)> = Statements::rows(self, &sql)?
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                (v(0).to_lowercase(), v(1))
            })
            .collect();
        let wanted: Vec<(String, (String, String))> = grants
            .iter()
            .flat_map(|(p, who)| who.iter().map(move |g| (p.to_lowercase(), grantee(g))))
            .collect();
        let target = rel(relation);
        for (p, role) in &held {
            if !wanted.iter().any(|(wp, (_, name))| wp == p && name == role) {
                let from = if role == "public" {
                    "PUBLIC".into()
                } else {
                    quote(role)
                };
                let revoke = format!("REVOKE {} ON {target} FROM {from}", p.to_uppercase());
                self.run(&revoke, log)?;
            }
        }
        for (p, (to, name)) in &wanted {
            if !held.iter().any(|(hp, role)| hp == p && role == name) {
                self.run(
                    &format!("GRANT {} ON {target} TO {to}", p.to_uppercase()),
                    log,
                )?;
            }
        }
        Ok(())
    }
}

/// Incremental runs and snapshots: the shared statements over PostgreSQL's primitives.
impl Statements for PgSession {
    fn dialect(&self) -> &'static dyn Dialect {
        dialect()
    }

    fn run(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<()> {
        PgSession::run(self, sql, log)
    }

    fn exec(&mut self, sql: &str, log: &mut Vec<String>) -> DbResult<u64> {
        PgSession::exec(self, sql, log)
    }

    fn rows(&mut self, sql: &str) -> DbResult<Rows> {
        let rows = query_rows(&mut self.client, sql, None);
        self.lost(rows)
    }

    fn temp_table(&mut self, name: &str, sql: &str, log: &mut Vec<String>) -> DbResult<String> {
        let temp = quote(name);
        let create = format!("CREATE TEMP TABLE {temp} ON COMMIT DROP AS\n{}", body(sql));
        PgSession::run(self, &create, log)?;
        Ok(temp)
    }

    fn create_table(
        &mut self,
        relation: &Relation,
        sql: &str,
        log: &mut Vec<String>,
    ) -> DbResult<u64> {
        let create = format!("CREATE TABLE {} AS\n{}", rel(relation), body(sql));
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
        let rows = query_rows(&mut self.client, &sql, None)?;
        Ok(rows
            .rows
            .into_iter()
            .map(|r| {
                let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                let kind = match v(2).as_str() {
                    "v" | "m" => RelKind::View,
                    _ => RelKind::Table,
                };
                (Relation::new(v(0), v(1)), kind)
            })
            .collect())
    }

    fn drop_leftovers(&mut self, log: &mut Vec<String>) -> DbResult<Vec<Relation>> {
        // Staged tables live only inside uncommitted transactions, so a killed run leaves
        // none; tables of those names are dropped all the same, should one ever be committed.
        let sql = format!(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
             AND (c.relname LIKE {} OR c.relname LIKE {})",
            literal(&format!("%{}", NEW_SUFFIX.replace('_', "\\_"))),
            literal(&format!("%{}", OLD_SUFFIX.replace('_', "\\_")))
        );
        let leftovers: Vec<Relation> = query_rows(&mut self.client, &sql, None)?
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
            false => query_rows(&mut self.client, &sql, None)?,
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
                let comments = statements::comments(dialect(), &staged.relation, staged.kind, docs);
                comments.iter().try_for_each(|sql| self.run(sql, log))
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

    fn count_failures(&mut self, queries: &[(&str, Option<u64>)]) -> DbResult<Vec<u64>> {
        let sql = statements::failure_counts(queries);
        let rows = self.guarded(|s| query_rows(&mut s.client, &sql, None))?;
        let mut out = vec![0; queries.len()];
        for r in rows.rows {
            let v = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let counted = (v(0).parse::<usize>(), v(1).parse::<u64>());
            if let (Ok(i), Ok(n)) = counted
                && let Some(slot) = out.get_mut(i)
            {
                *slot = n;
            }
        }
        Ok(out)
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
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass({}) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            literal(&rel(relation))
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
        let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
        let sql = format!(
            "SELECT CAST(extract(epoch FROM max({loaded_at})) AS double precision) FROM {from}{filter}"
        );
        let value = scalar(&mut self.client, &sql)?;
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
        let done = self.client.batch_execute(sql).map_err(failed);
        self.lost(done)
    }

    fn query(&mut self, sql: &str, limit: usize) -> DbResult<Rows> {
        let bound = i64::try_from(limit).map_or(String::new(), |l| format!(" LIMIT {l}"));
        let wrapped = format!("SELECT * FROM (\n{}\n) AS q{bound}", body(sql));
        let rows = query_rows(&mut self.client, &wrapped, Some(limit));
        self.lost(rows)
    }
}
