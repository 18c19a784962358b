//! The connection caps: a count of open connections in all and per source IP, checked
//! when a connection is accepted and given back when it closes; and the keep-alive idle
//! timeout, which only the stream can see (nothing read since the last write).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use futures::future::Either;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::Limits;

/// An [`Accept`] step that refuses a connection over the caps by closing it before
/// anything is read from it (no TLS handshake, no parsing), then hands the rest to
/// `inner` (plain, or a TLS acceptor wrapped around this one).
#[derive(Debug, Clone)]
pub struct ConnectionCaps<A> {
    inner: A,
    open: Arc<Open>,
    idle: Duration,
}

#[derive(Debug)]
struct Open {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl<A> ConnectionCaps<A> {
    pub fn new(inner: A, limits: &Limits) -> Self {
        Self {
            inner,
            idle: limits.idle_timeout,
            open: Arc::new(Open {
                max_total: limits.max_connections,
                max_per_ip: limits.max_connections_per_ip,
                counts: Mutex::default(),
            }),
        }
    }
}

impl Open {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // A panic while counting leaves plain integers behind: still usable.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new connection from `ip`, unless a cap is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let mut counts = self.counts();
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if counts.total >= self.max_total || from_ip >= self.max_per_ip {
            return None;
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Some(Permit {
            open: Arc::clone(self),
            ip,
        })
    }
}

/// One counted connection; dropping it (when the connection closes) uncounts it, and
/// forgets the address with its last connection.
#[derive(Debug)]
struct Permit {
    open: Arc<Open>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.open.counts();
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A TCP stream that holds its connection's place in the counts while it lives, and
/// ends when it has been idle too long: nothing read since accept or since the last
/// write (an answer), for the idle timeout.
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    _permit: Permit,
    idle: Duration,
    /// Armed while nothing has been read since the last write.
    idle_deadline: Option<Pin<Box<Sleep>>>,
}

impl Counted {
    fn arm(&mut self) {
        let deadline = Instant::now() + self.idle;
        match &mut self.idle_deadline {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.idle_deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }
}

type Refused<T> = std::future::Ready<io::Result<T>>;

impl<A, S> Accept<TcpStream, S> for ConnectionCaps<A>
where
    A: Accept<Counted, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Either<A::Future, Refused<(A::Stream, A::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let permit = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.open.admit(peer.ip()));
        match permit {
            Some(permit) => {
                let mut counted = Counted {
                    stream,
                    _permit: permit,
                    idle: self.idle,
                    idle_deadline: None,
                };
                counted.arm();
                Either::Left(self.inner.accept(counted, service))
            }
            // Dropping the stream closes the connection.
            None => Either::Right(std::future::ready(Err(io::Error::other(
                "connection cap reached",
            )))),
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.idle_deadline = None;
        } else if read.is_pending()
            && let Some(deadline) = &mut self.idle_deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
        }
        read
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(1..))) {
            self.arm();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(1..))) {
            self.arm();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
