//! A thin Spark Connect client: SQL in, Arrow IPC batches out, over tonic (gRPC) with the
//! protocol's own generated types. Synchronous to its caller: each client drives its calls on a
//! runtime of its own, so a worker thread blocks on its session as it does on the other
//! engines.

use std::io::Cursor;
use std::time::Duration;

use arrow_array::RecordBatch;
use spark_connect_proto as pb;
use spark_connect_proto::spark_connect_service_client::SparkConnectServiceClient;
use tonic::codegen::Bytes;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::Settings;
use crate::adapter::{DbError, DbResult};

/// The largest message either side sends: the server's Arrow batches (4 MiB by default) and a
/// seed's rows.
const MAX_MESSAGE: usize = 256 << 20;

pub(super) struct Client {
    runtime: tokio::runtime::Runtime,
    grpc: SparkConnectServiceClient<Channel>,
    session_id: String,
    user: pb::UserContext,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

/// A failed call: the server's message (`[TABLE_OR_VIEW_NOT_FOUND] …`), or why the
/// connection failed.
fn failed(what: impl std::fmt::Display) -> DbError {
    DbError::Failed(what.to_string())
}

fn status(s: tonic::Status) -> DbError {
    match s.code() {
        tonic::Code::Unavailable => {
            failed(format!("Spark Connect is unavailable: {}", s.message()))
        }
        _ => failed(s.message()),
    }
}

impl Client {
    /// Connects as a new Spark session named `session_id` (a UUID).
    pub(super) fn connect(settings: &Settings, session_id: String) -> DbResult<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let channel = channel(&runtime, settings)?;
        let token = match &settings.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| failed("the Spark token is not valid header text"))?,
            ),
            None => None,
        };
        let user = pb::UserContext {
            user_id: settings.user.clone(),
            user_name: settings.user.clone(),
            extensions: Vec::new(),
        };
        let grpc = SparkConnectServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Client {
            runtime,
            grpc,
            session_id,
            user,
            token,
        })
    }

    pub(super) fn session_id(&self) -> &str {
        &self.session_id
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        r
    }

    /// Runs a plan and hands each Arrow batch of its result to `each` until it returns false.
    fn execute(
        &mut self,
        op: pb::plan::OpType,
        each: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> DbResult<()> {
        let request = self.request(pb::ExecutePlanRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user.clone()),
            plan: Some(pb::Plan { op_type: Some(op) }),
            client_type: Some(format!("xform/{}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        });
        let grpc = &mut self.grpc;
        self.runtime.block_on(async {
            let mut stream = grpc
                .execute_plan(request)
                .await
                .map_err(status)?
                .into_inner();
            let mut wanted = true;
            while let Some(response) = stream.message().await.map_err(status)? {
                use pb::execute_plan_response::ResponseType;
                let Some(ResponseType::ArrowBatch(batch)) = response.response_type else {
                    continue;
                };
                if wanted {
                    for b in decode(batch.data)? {
                        wanted = wanted && each(b);
                    }
                }
            }
            Ok(())
        })
    }

    /// Runs one SQL statement or query, handing over its rows batch by batch.
    pub(super) fn sql(
        &mut self,
        query: &str,
        each: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> DbResult<()> {
        let sql = pb::Sql {
            query: query.to_string(),
            ..Default::default()
        };
        self.execute(
            pb::plan::OpType::Root(relation(pb::relation::RelType::Sql(sql))),
            each,
        )
    }

    /// Makes `batch` (sent whole, as Arrow IPC) readable in this session as temporary view
    /// `name`.
    pub(super) fn temp_view(&mut self, name: &str, batch: &RecordBatch) -> DbResult<()> {
        let local = pb::LocalRelation {
            data: Some(encode(batch)?),
            schema: None,
        };
        let view = pb::CreateDataFrameViewCommand {
            input: Some(relation(pb::relation::RelType::LocalRelation(local))),
            name: name.to_string(),
            is_global: false,
            replace: true,
        };
        let command = pb::Command {
            command_type: Some(pb::command::CommandType::CreateDataframeView(view)),
        };
        self.execute(pb::plan::OpType::Command(command), &mut |_| true)
    }

    /// Interrupts everything running in session `session_id` (from any thread: it opens a
    /// connection of its own).
    pub(super) fn interrupt(settings: &Settings, session_id: &str) -> DbResult<()> {
        let mut c = Client::connect(settings, session_id.to_string())?;
        let request = c.request(pb::InterruptRequest {
            session_id: session_id.to_string(),
            user_context: Some(c.user.clone()),
            interrupt_type: pb::interrupt_request::InterruptType::All as i32,
            ..Default::default()
        });
        let grpc = &mut c.grpc;
        c.runtime
            .block_on(grpc.interrupt(request))
            .map(|_| ())
            .map_err(status)
    }

    /// Ends the session on the server: its temporary views and settings go with it.
    pub(super) fn release(&mut self) {
        let request = self.request(pb::ReleaseSessionRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user.clone()),
            ..Default::default()
        });
        let grpc = &mut self.grpc;
        let _ = self.runtime.block_on(grpc.release_session(request));
    }
}

/// A connection to the server (TLS with the public roots under `use_ssl`).
fn channel(runtime: &tokio::runtime::Runtime, settings: &Settings) -> DbResult<Channel> {
    let scheme = if settings.use_ssl { "https" } else { "http" };
    let address = format!("{scheme}://{}:{}", settings.host, settings.port);
    let mut endpoint = Endpoint::from_shared(address.clone())
        .map_err(|e| failed(format!("{address}: {e}")))?
        .connect_timeout(Duration::from_secs(settings.connect_timeout));
    if settings.use_ssl {
        let tls = ClientTlsConfig::new().with_webpki_roots();
        endpoint = endpoint.tls_config(tls).map_err(failed)?;
    }
    runtime
        .block_on(endpoint.connect())
        .map_err(|e| failed(format!("cannot connect to Spark Connect at {address}: {e}")))
}

fn relation(rel_type: pb::relation::RelType) -> pb::Relation {
    pb::Relation {
        common: None,
        rel_type: Some(rel_type),
    }
}

fn decode(data: Bytes) -> DbResult<Vec<RecordBatch>> {
    let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(data), None)
        .map_err(|e| failed(format!("an Arrow batch from Spark could not be read: {e}")))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("an Arrow batch from Spark could not be read: {e}")))
}

fn encode(batch: &RecordBatch) -> DbResult<Bytes> {
    let mut out = Vec::new();
    let mut w =
        arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).map_err(failed)?;
    w.write(batch).map_err(failed)?;
    w.finish().map_err(failed)?;
    drop(w);
    Ok(Bytes::from(out))
}
