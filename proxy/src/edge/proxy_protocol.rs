//! The PROXY protocol (v1 text and v2 binary) that load balancers such as an AWS NLB put in front of a connection,
//! so the proxy learns the real client address. Specification: haproxy's `doc/proxy-protocol.txt`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The most a header may take: 107 bytes for v1, 16 + 520 for v2 (the spec's recommended 536-byte buffer).
pub(crate) const MAX_HEADER: usize = 536;
const V1_MAX: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole header of `consumed` bytes; `source` is `None` for `UNKNOWN`, `LOCAL` and unspecified families,
    /// where the connection's own peer address stands.
    Complete {
        consumed: usize,
        source: Option<SocketAddr>,
    },
    /// The bytes so far are a valid beginning; read more.
    Incomplete,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("the connection does not start with a PROXY protocol header (expected `PROXY ` or the v2 signature)")]
    NotProxyProtocol,
    #[error("PROXY protocol header longer than {max} bytes")]
    TooLong { max: usize },
    #[error("PROXY v1 header is not ASCII text")]
    V1NotAscii,
    #[error("PROXY v1 header has {0} fields; expected `PROXY <TCP4|TCP6> <src> <dst> <sport> <dport>`")]
    V1FieldCount(usize),
    #[error("PROXY v1 protocol `{0}` is not TCP4, TCP6 or UNKNOWN")]
    V1Protocol(String),
    #[error("PROXY v1 address `{0}` is not a valid address of the announced family")]
    V1Address(String),
    #[error("PROXY v1 port `{0}` is not a number in 0..=65535")]
    V1Port(String),
    #[error("PROXY v2 version nibble is {0:#x}; expected 0x2")]
    V2Version(u8),
    #[error("PROXY v2 command {0:#x} is neither LOCAL (0x0) nor PROXY (0x1)")]
    V2Command(u8),
    #[error("PROXY v2 address family/protocol byte {0:#04x} is unknown")]
    V2Family(u8),
    #[error("PROXY v2 address block of {got} bytes is shorter than the {need} its family needs")]
    V2ShortAddress { got: usize, need: usize },
    #[error("connection closed before the PROXY protocol header was complete")]
    UnexpectedEof,
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Parses a PROXY protocol header (v1 or v2) from the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    let Some(&first) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    if first == V1_PREFIX[0] {
        parse_v1(buf)
    } else if first == V2_SIGNATURE[0] {
        parse_v2(buf)
    } else {
        Err(ProxyHeaderError::NotProxyProtocol)
    }
}

fn is_prefix_of(buf: &[u8], expected: &[u8]) -> bool {
    let n = buf.len().min(expected.len());
    buf[..n] == expected[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if !is_prefix_of(buf, V1_PREFIX) {
        return Err(ProxyHeaderError::NotProxyProtocol);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyHeaderError::TooLong { max: V1_MAX })
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = std::str::from_utf8(&buf[..end])
        .ok()
        .filter(|l| l.is_ascii())
        .ok_or(ProxyHeaderError::V1NotAscii)?;
    let consumed = end + 2;
    let fields: Vec<&str> = line.split(' ').collect();
    // fields[0] is "PROXY", checked by the prefix.
    match fields.get(1).copied() {
        // The receiver must ignore anything after UNKNOWN.
        Some("UNKNOWN") => Ok(Parsed::Complete { consumed, source: None }),
        Some(proto @ ("TCP4" | "TCP6")) => {
            if fields.len() != 6 {
                return Err(ProxyHeaderError::V1FieldCount(fields.len()));
            }
            let src = parse_v1_ip(fields[2], proto == "TCP4")?;
            parse_v1_ip(fields[3], proto == "TCP4")?;
            let sport = parse_v1_port(fields[4])?;
            parse_v1_port(fields[5])?;
            Ok(Parsed::Complete {
                consumed,
                source: Some(SocketAddr::new(src, sport)),
            })
        }
        Some(other) => Err(ProxyHeaderError::V1Protocol(other.to_owned())),
        None => Err(ProxyHeaderError::V1FieldCount(fields.len())),
    }
}

fn parse_v1_ip(s: &str, v4: bool) -> Result<IpAddr, ProxyHeaderError> {
    let ip = if v4 {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    } else {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    };
    ip.map_err(|_| ProxyHeaderError::V1Address(s.to_owned()))
}

fn parse_v1_port(s: &str) -> Result<u16, ProxyHeaderError> {
    let bad = || ProxyHeaderError::V1Port(s.to_owned());
    // The spec forbids leading zeros and signs; `u16::from_str` would accept `+80` and `080`.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return Err(bad());
    }
    s.parse().map_err(|_| bad())
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyHeaderError> {
    if !is_prefix_of(buf, V2_SIGNATURE) {
        return Err(ProxyHeaderError::NotProxyProtocol);
    }
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let version = buf[12] >> 4;
    if version != 0x2 {
        return Err(ProxyHeaderError::V2Version(version));
    }
    let command = buf[12] & 0x0f;
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let consumed = 16 + len;
    if consumed > MAX_HEADER {
        return Err(ProxyHeaderError::TooLong { max: MAX_HEADER });
    }
    if buf.len() < consumed {
        return Ok(Parsed::Incomplete);
    }
    let addr = &buf[16..consumed];
    let source = match command {
        // LOCAL: a health check from the balancer itself; the connection's endpoints stand.
        0x0 => None,
        0x1 => match family {
            // TCP or UDP over IPv4.
            0x11 | 0x12 => {
                need(addr, 12)?;
                let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([addr[8], addr[9]])))
            }
            // TCP or UDP over IPv6.
            0x21 | 0x22 => {
                need(addr, 36)?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&addr[..16]);
                let ip = Ipv6Addr::from(octets);
                Some(SocketAddr::new(
                    IpAddr::V6(ip),
                    u16::from_be_bytes([addr[32], addr[33]]),
                ))
            }
            // UNSPEC and Unix sockets: no IP address to take.
            0x00 | 0x31 | 0x32 => None,
            other => return Err(ProxyHeaderError::V2Family(other)),
        },
        other => return Err(ProxyHeaderError::V2Command(other)),
    };
    Ok(Parsed::Complete { consumed, source })
}

fn need(addr: &[u8], need: usize) -> Result<(), ProxyHeaderError> {
    if addr.len() < need {
        return Err(ProxyHeaderError::V2ShortAddress { got: addr.len(), need });
    }
    Ok(())
}

/// Reads a PROXY protocol header from `stream`, at most [`MAX_HEADER`] bytes and within `timeout`.
///
/// Returns the source address it names (`None`: keep the peer address) and the bytes read past the header, which
/// belong to the application protocol: serve the connection through [`Rewind`] so they are read again.
pub(crate) async fn read_header<S>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(Option<SocketAddr>, Vec<u8>), ProxyHeaderError>
where
    S: AsyncRead + Unpin,
{
    let read = async {
        let mut buf = vec![0u8; MAX_HEADER];
        let mut filled = 0;
        loop {
            let n = stream.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(ProxyHeaderError::UnexpectedEof);
            }
            filled += n;
            match parse(&buf[..filled])? {
                Parsed::Complete { consumed, source } => {
                    buf.truncate(filled);
                    buf.drain(..consumed);
                    return Ok((source, buf));
                }
                // Unreachable in practice: parse reports TooLong before the buffer fills.
                Parsed::Incomplete if filled == MAX_HEADER => {
                    return Err(ProxyHeaderError::TooLong { max: MAX_HEADER });
                }
                Parsed::Incomplete => {}
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ProxyHeaderError::Timeout(timeout))?
}

/// An IO stream that first yields `prefix` (bytes already read from `inner`), then reads `inner`; writes go
/// straight to `inner`.
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: Vec<u8>,
    pos: usize,
    inner: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(prefix: Vec<u8>, inner: T) -> Self {
        Self { prefix, pos: 0, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    fn v2(command: u8, family: u8, addr: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x20 | command);
        b.push(family);
        b.extend_from_slice(&u16::try_from(addr.len()).unwrap().to_be_bytes());
        b.extend_from_slice(addr);
        b
    }

    fn v2_tcp4() -> Vec<u8> {
        // src 192.0.2.10:51000, dst 10.0.0.1:443
        let mut addr = vec![192, 0, 2, 10, 10, 0, 0, 1];
        addr.extend_from_slice(&51000u16.to_be_bytes());
        addr.extend_from_slice(&443u16.to_be_bytes());
        v2(0x1, 0x11, &addr)
    }

    fn complete(buf: &[u8]) -> (usize, Option<SocketAddr>) {
        match parse(buf).unwrap() {
            Parsed::Complete { consumed, source } => (consumed, source),
            Parsed::Incomplete => panic!("incomplete: {buf:?}"),
        }
    }

    #[test]
    fn v1_tcp4_gives_source_and_length() {
        let buf = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nGET / HTTP/1.1\r\n";
        let (consumed, source) = complete(buf);
        assert_eq!(consumed, 38);
        assert_eq!(&buf[consumed..consumed + 3], b"GET");
        assert_eq!(source, Some("1.2.3.4:1111".parse().unwrap()));
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        let (_, source) = complete(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n");
        assert_eq!(source, Some("[2001:db8::1]:4000".parse().unwrap()));
        assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (15, None));
        let (consumed, source) = complete(b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\nX");
        assert_eq!((consumed, source), (39, None));
    }

    #[test]
    fn v1_partial_is_incomplete() {
        for buf in [
            &b"P"[..],
            b"PROX",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 22",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r",
        ] {
            assert_eq!(parse(buf).unwrap(), Parsed::Incomplete, "{buf:?}");
        }
    }

    #[test]
    fn v1_malformed_is_named() {
        use ProxyHeaderError as E;
        type Check = fn(&E) -> bool;
        let cases: [(&[u8], Check); 8] = [
            (b"GET / HTTP/1.1\r\n", |e| matches!(e, E::NotProxyProtocol)),
            (b"PROXI TCP4", |e| matches!(e, E::NotProxyProtocol)),
            (
                b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
                |e| matches!(e, E::V1Protocol(p) if p == "UDP4"),
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n", |e| {
                matches!(e, E::V1FieldCount(5))
            }),
            (
                b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
                |e| matches!(e, E::V1Address(a) if a == "::1"),
            ),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", |e| matches!(e, E::V1Address(_))),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                |e| matches!(e, E::V1Port(p) if p == "65536"),
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", |e| matches!(e, E::V1Port(_))),
        ];
        for (buf, expected) in cases {
            let err = parse(buf).unwrap_err();
            assert!(expected(&err), "{:?} gave {err:?}", String::from_utf8_lossy(buf));
        }
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX, b'a');
        assert!(matches!(parse(&long), Err(E::TooLong { max: 107 })));
    }

    #[test]
    fn v2_tcp4_gives_source_and_length() {
        let mut buf = v2_tcp4();
        assert_eq!(buf.len(), 28);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(complete(&buf), (28, Some("192.0.2.10:51000".parse().unwrap())));
    }

    #[test]
    fn v2_tcp6_with_tlvs() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut addr = src.octets().to_vec();
        addr.extend_from_slice(&dst.octets());
        addr.extend_from_slice(&40000u16.to_be_bytes());
        addr.extend_from_slice(&443u16.to_be_bytes());
        // A TLV after the addresses (PP2_TYPE_AUTHORITY "a.b") is skipped by the length.
        addr.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'.', b'b']);
        let buf = v2(0x1, 0x21, &addr);
        assert_eq!(complete(&buf), (16 + 36 + 6, Some(SocketAddr::new(src.into(), 40000))));
    }

    #[test]
    fn v2_local_and_unspec_have_no_source() {
        assert_eq!(complete(&v2(0x0, 0x00, &[])), (16, None));
        // LOCAL ignores any address block.
        assert_eq!(complete(&v2(0x0, 0x11, &[0; 12])), (28, None));
        assert_eq!(complete(&v2(0x1, 0x00, &[])), (16, None));
    }

    #[test]
    fn v2_partial_is_incomplete() {
        let buf = v2_tcp4();
        for n in [1, 5, 12, 15, 16, 27] {
            assert_eq!(parse(&buf[..n]).unwrap(), Parsed::Incomplete, "{n} bytes");
        }
    }

    #[test]
    fn v2_malformed_is_named() {
        use ProxyHeaderError as E;
        let mut bad_sig = v2_tcp4();
        bad_sig[8] = b'X';
        assert!(matches!(parse(&bad_sig), Err(E::NotProxyProtocol)));

        let mut bad_version = v2_tcp4();
        bad_version[12] = 0x11;
        assert!(matches!(parse(&bad_version), Err(E::V2Version(1))));

        assert!(matches!(parse(&v2(0x2, 0x11, &[0; 12])), Err(E::V2Command(2))));
        assert!(matches!(parse(&v2(0x1, 0x41, &[0; 12])), Err(E::V2Family(0x41))));
        assert!(matches!(
            parse(&v2(0x1, 0x11, &[0; 8])),
            Err(E::V2ShortAddress { got: 8, need: 12 })
        ));
        assert!(matches!(
            parse(&v2(0x1, 0x21, &[0; 12])),
            Err(E::V2ShortAddress { got: 12, need: 36 })
        ));
        // A length past the 536-byte bound is refused from the 16-byte prefix, without waiting for the rest.
        let mut huge = v2(0x1, 0x11, &[]);
        huge[14..16].copy_from_slice(&600u16.to_be_bytes());
        assert!(matches!(parse(&huge), Err(E::TooLong { max: MAX_HEADER })));
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn read_header_then_rewind_replays_the_rest() {
        let (mut client, mut server) = pair().await;
        let header = v2_tcp4();
        // Split the header across writes so read_header has to loop.
        client.write_all(&header[..10]).await.unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&header[10..]).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();

        let (source, rest) = read_header(&mut server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(source, Some("192.0.2.10:51000".parse().unwrap()));

        let mut io = Rewind::new(rest, server);
        let mut got = vec![0u8; 16];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");

        // Later bytes come from the socket, and writes reach the client.
        client.write_all(b"Host: a\r\n").await.unwrap();
        let mut more = vec![0u8; 9];
        io.read_exact(&mut more).await.unwrap();
        assert_eq!(&more, b"Host: a\r\n");
        io.write_all(b"HTTP/1.1 200 OK\r\n").await.unwrap();
        let mut answer = vec![0u8; 17];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn read_header_v1_over_a_socket() {
        let (mut client, mut server) = pair().await;
        client
            .write_all(b"PROXY TCP4 203.0.113.5 10.0.0.1 5555 80\r\nGET")
            .await
            .unwrap();
        let (source, rest) = read_header(&mut server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(source, Some("203.0.113.5:5555".parse().unwrap()));
        // Whatever of the request arrived with the header is handed back, not lost.
        assert!(b"GET".starts_with(&rest), "{rest:?}");
    }

    #[tokio::test]
    async fn read_header_rejects_plain_http_eof_and_silence() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let err = read_header(&mut server, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ProxyHeaderError::NotProxyProtocol), "{err:?}");

        let (mut client, mut server) = pair().await;
        client.write_all(b"PROXY TCP4 1.2").await.unwrap();
        drop(client);
        let err = read_header(&mut server, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, ProxyHeaderError::UnexpectedEof), "{err:?}");

        let (_client, mut server) = pair().await;
        let err = read_header(&mut server, Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, ProxyHeaderError::Timeout(_)), "{err:?}");
    }
}
