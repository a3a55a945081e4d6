//! OTLP/gRPC: one tonic service per signal with a pass-through codec, so that this
//! module decides the status codes: `INVALID_ARGUMENT` for undecodable messages,
//! `RESOURCE_EXHAUSTED` for oversize ones, `UNAVAILABLE` when the server sheds load.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{
    Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::{Export, Logs, Metrics, Traces, decode_protobuf};
use crate::Collector;
use crate::error::IngestError;

/// Hands message bytes through unchanged; decoding happens in the handler.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

fn status(e: &IngestError) -> Status {
    Status::new(e.grpc_code(), e.to_string())
}

struct Handler<E> {
    c: Arc<Collector>,
    _e: PhantomData<E>,
}

impl<E: Export> UnaryService<Bytes> for Handler<E> {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let c = self.c.clone();
        Box::pin(async move {
            let body = request.into_inner();
            let res = async {
                let _permit = c.admit(body.len())?;
                let req = decode_protobuf::<E>(&body)?;
                E::export(&c, req).await
            }
            .await;
            match res {
                Ok(partial) => {
                    c.count_ok::<E>("grpc", body.len(), &partial);
                    Ok(Response::new(Bytes::from(prost::Message::encode_to_vec(
                        &E::response(partial),
                    ))))
                }
                Err(e) => {
                    c.count_refused::<E>("grpc", body.len(), &e);
                    Err(status(&e))
                }
            }
        })
    }
}

/// The gRPC service of one signal.
pub(crate) struct OtlpGrpc<E> {
    c: Arc<Collector>,
    _e: PhantomData<E>,
}

impl<E> Clone for OtlpGrpc<E> {
    fn clone(&self) -> Self {
        OtlpGrpc {
            c: self.c.clone(),
            _e: PhantomData,
        }
    }
}

impl<E: Export> NamedService for OtlpGrpc<E> {
    const NAME: &'static str = E::GRPC_SERVICE;
}

type BoxFut<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<E: Export> tower::Service<http::Request<tonic::body::Body>> for OtlpGrpc<E> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFut<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let c = self.c.clone();
        Box::pin(async move {
            if req
                .uri()
                .path()
                .strip_prefix('/')
                .and_then(|p| p.strip_suffix("/Export"))
                != Some(E::GRPC_SERVICE)
            {
                return Ok(
                    Status::unimplemented(format!("unknown method {}", req.uri().path()))
                        .into_http(),
                );
            }
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(c.config().max_request_bytes), None);
            let handler = Handler::<E> {
                c: c.clone(),
                _e: PhantomData,
            };
            let mut resp = grpc.unary(handler, req).await;
            // tonic reports a message over the size limit as OUT_OF_RANGE; gRPC and OTLP
            // call that RESOURCE_EXHAUSTED. Nothing else here produces OUT_OF_RANGE.
            if resp.headers().get("grpc-status").is_some_and(|v| v == "11") {
                resp.headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static("8"));
                c.count_refused::<E>(
                    "grpc",
                    0,
                    &IngestError::TooLarge {
                        size: 0,
                        limit: c.config().max_request_bytes,
                    },
                );
            }
            Ok(resp)
        })
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    c: Arc<Collector>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(OtlpGrpc::<Traces> {
            c: c.clone(),
            _e: PhantomData,
        })
        .add_service(OtlpGrpc::<Metrics> {
            c: c.clone(),
            _e: PhantomData,
        })
        .add_service(OtlpGrpc::<Logs> { c, _e: PhantomData })
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

#[cfg(test)]
pub(crate) fn test_codec() -> impl Codec<Encode = Bytes, Decode = Bytes> {
    RawCodec
}
