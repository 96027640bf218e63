//! The connection security upgrade: libp2p's TLS 1.3 handshake
//! (`/tls/1.0.0`, the libp2p TLS spec) with the cipher suites ordered for this
//! machine. libp2p-tls always prefers ChaCha20-Poly1305; with AES instructions
//! AES-GCM is several times cheaper per byte, and tarball transfers are
//! CPU-bound on both nodes. Certificates come from libp2p-tls (a fresh
//! self-signed key carrying the node identity's signature); the checks below
//! are the spec's: exactly one certificate, valid self-signature and libp2p
//! extension (`certificate::parse`), the handshake signed by that
//! certificate's key, TLS 1.3 only, client certificates mandatory.
//! Nodes without this upgrade are reached over Noise, offered next to it.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use libp2p::core::UpgradeInfo;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::futures::future::BoxFuture;
use libp2p::futures::{AsyncRead, AsyncWrite, FutureExt};
use libp2p::identity::{Keypair, PeerId};
use libp2p::tls::certificate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite::{
    TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
    SupportedCipherSuite,
};

pub use libp2p::tls::TlsStream;

const PROTOCOL: &str = "/tls/1.0.0";
const ALPN: &[u8] = b"libp2p";

/// Both ends of the handshake for one identity.
#[derive(Clone)]
pub struct Tls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Tls {
    pub fn new(identity: &Keypair) -> io::Result<Self> {
        let fail = |e: &dyn std::fmt::Display| io::Error::other(format!("TLS setup: {e}"));
        let (cert, key) = certificate::generate(identity).map_err(|e| fail(&e))?;
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = cipher_suites(hardware_aes());
        // Not `with_single_cert`: its consistency check parses the
        // certificate with webpki, which rejects the critical libp2p extension.
        let signer = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| fail(&e))?;
        let ours = Arc::new(SingleCertAndKey::from(CertifiedKey::new(
            vec![cert],
            signer,
        )));
        let provider = Arc::new(provider);
        let verifier = Arc::new(Libp2pVerifier);

        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| fail(&e))?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(ours.clone());
        // Our order, not the client's: a stock libp2p client lists ChaCha20 first.
        server.ignore_client_order = true;
        server.alpn_protocols = vec![ALPN.to_vec()];

        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| fail(&e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(ours);
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// TLS 1.3 suites, the cheapest first: AES-GCM only with hardware support
/// (without it ChaCha20 is faster and constant-time).
fn cipher_suites(aes: bool) -> Vec<SupportedCipherSuite> {
    let aes_gcm = [TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384];
    let mut suites = vec![TLS13_CHACHA20_POLY1305_SHA256];
    if aes {
        suites.splice(0..0, aes_gcm);
    } else {
        suites.extend(aes_gcm);
    }
    suites
}

fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    return std::arch::is_aarch64_feature_detected!("aes");
    #[allow(unreachable_code)]
    false
}

impl UpgradeInfo for Tls {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(PROTOCOL)
    }
}

impl<C> InboundConnectionUpgrade<C> for Tls
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Output>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            let stream = futures_rustls::TlsAcceptor::from(self.server)
                .accept(socket)
                .await?;
            let peer = remote_peer(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

impl<C> OutboundConnectionUpgrade<C> for Tls
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Output>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            // The spec forbids a server name; an IP address sends no SNI.
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
            let stream = futures_rustls::TlsConnector::from(self.client)
                .connect(name, socket)
                .await?;
            let peer = remote_peer(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

/// The peer whose certificate the finished handshake verified.
fn remote_peer(state: &rustls::CommonState) -> io::Result<PeerId> {
    match state.peer_certificates() {
        Some([cert]) => Ok(peer_of(cert, &[]).map_err(io::Error::other)?),
        _ => Err(io::Error::other("the peer presented no single certificate")),
    }
}

/// The spec's certificate checks; the certificate's peer id.
fn peer_of(
    cert: &CertificateDer,
    intermediates: &[CertificateDer],
) -> Result<PeerId, rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::General(
            "a libp2p peer presents exactly one certificate".into(),
        ));
    }
    Ok(parse(cert)?.peer_id())
}

fn parse<'a>(
    cert: &'a CertificateDer<'a>,
) -> Result<certificate::P2pCertificate<'a>, rustls::Error> {
    certificate::parse(cert).map_err(|e| {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
    })
}

fn tls13_signature(
    message: &[u8],
    cert: &CertificateDer,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    parse(cert)?
        .verify_signature(dss.scheme, message, dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

/// Verifies both sides' certificates the libp2p way. The dialled peer id is
/// checked by the swarm against the one this handshake returns.
#[derive(Debug)]
struct Libp2pVerifier;

/// What a libp2p certificate key may be, preferred first (no RSA unless needed).
fn schemes() -> Vec<SignatureScheme> {
    use SignatureScheme::*;
    vec![
        ECDSA_NISTP384_SHA384,
        ECDSA_NISTP256_SHA256,
        ED25519,
        RSA_PSS_SHA512,
        RSA_PSS_SHA384,
        RSA_PSS_SHA256,
        RSA_PKCS1_SHA512,
        RSA_PKCS1_SHA384,
        RSA_PKCS1_SHA256,
    ]
}

fn no_tls12() -> rustls::Error {
    rustls::Error::General("libp2p allows TLS 1.3 only".into())
}

/// The methods rustls's server and client verifier traits both require,
/// the same on either side of the handshake.
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(no_tls12())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            schemes()
        }
    };
}

impl ServerCertVerifier for Libp2pVerifier {
    fn verify_server_cert(
        &self,
        cert: &CertificateDer,
        intermediates: &[CertificateDer],
        _: &ServerName,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        peer_of(cert, intermediates).map(|_| ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for Libp2pVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        cert: &CertificateDer,
        intermediates: &[CertificateDer],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        peer_of(cert, intermediates).map(|_| ClientCertVerified::assertion())
    }

    signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::tcp::tokio::TcpStream;

    type Side = TcpStream;

    /// Run a server and a client upgrade against each other over a loopback
    /// connection; the server's and the client's results.
    fn handshake<S, C, SO, CO>(server: S, client: C) -> (io::Result<SO>, io::Result<CO>)
    where
        S: FnOnce(Side) -> BoxFuture<'static, io::Result<SO>>,
        C: FnOnce(Side) -> BoxFuture<'static, io::Result<CO>>,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (dialled, accepted) = tokio::join!(
                tokio::net::TcpStream::connect(listener.local_addr().unwrap()),
                listener.accept()
            );
            let both = async {
                tokio::join!(
                    server(TcpStream(accepted.unwrap().0)),
                    client(TcpStream(dialled.unwrap()))
                )
            };
            tokio::time::timeout(std::time::Duration::from_secs(20), both)
                .await
                .expect("the handshake hung")
        })
    }

    fn ours(key: &Keypair) -> Tls {
        Tls::new(key).unwrap()
    }

    fn suite<C>(stream: &TlsStream<C>) -> rustls::CipherSuite {
        let state: &rustls::CommonState = match stream {
            futures_rustls::TlsStream::Client(s) => s.get_ref().1,
            futures_rustls::TlsStream::Server(s) => s.get_ref().1,
        };
        state.negotiated_cipher_suite().unwrap().suite()
    }

    fn expected_suite() -> rustls::CipherSuite {
        cipher_suites(hardware_aes())[0].suite()
    }

    #[test]
    fn both_sides_learn_each_others_peer_id_and_use_the_cheapest_suite() {
        let (s, c) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (server, client) = (ours(&s), ours(&c));
        let (served, dialled) = handshake(
            move |io| server.upgrade_inbound(io, PROTOCOL),
            move |io| client.upgrade_outbound(io, PROTOCOL),
        );
        let (served, dialled) = (served.unwrap(), dialled.unwrap());
        assert_eq!(served.0, c.public().to_peer_id());
        assert_eq!(dialled.0, s.public().to_peer_id());
        assert_eq!(suite(&served.1), expected_suite());
        assert_eq!(suite(&dialled.1), expected_suite());
    }

    #[test]
    fn stock_libp2p_tls_peers_interoperate_in_both_directions() {
        let (s, c) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (stock_client, server) = (libp2p::tls::Config::new(&c).unwrap(), ours(&s));
        let (served, dialled) = handshake(
            move |io| server.upgrade_inbound(io, PROTOCOL),
            move |io| {
                async move { Ok(stock_client.upgrade_outbound(io, PROTOCOL).await.unwrap()) }
                    .boxed()
            },
        );
        let served = served.unwrap();
        assert_eq!(served.0, c.public().to_peer_id());
        assert_eq!(dialled.unwrap().0, s.public().to_peer_id());
        // The stock client lists ChaCha20 first; our server's order wins.
        assert_eq!(suite(&served.1), expected_suite());

        let (stock_server, client) = (libp2p::tls::Config::new(&s).unwrap(), ours(&c));
        let (served, dialled) = handshake(
            move |io| {
                async move { Ok(stock_server.upgrade_inbound(io, PROTOCOL).await.unwrap()) }.boxed()
            },
            move |io| client.upgrade_outbound(io, PROTOCOL),
        );
        assert_eq!(served.unwrap().0, c.public().to_peer_id());
        let dialled = dialled.unwrap();
        assert_eq!(dialled.0, s.public().to_peer_id());
        assert_eq!(suite(&dialled.1), expected_suite());
    }

    /// A plain TLS 1.3 server presenting `chain`, signing with `key`.
    fn plain_server(
        chain: CertificateDer<'static>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> impl FnOnce(Side) -> BoxFuture<'static, io::Result<()>> {
        let provider = rustls::crypto::ring::default_provider();
        let signer = provider.key_provider.load_private_key(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(CertifiedKey::new(
                vec![chain],
                signer,
            ))));
        move |io| {
            async move {
                futures_rustls::TlsAcceptor::from(Arc::new(config))
                    .accept(io)
                    .await
                    .map(|_| ())
            }
            .boxed()
        }
    }

    fn refused_by_our_client(
        server: impl FnOnce(Side) -> BoxFuture<'static, io::Result<()>>,
    ) -> String {
        let client = ours(&Keypair::generate_ed25519());
        let (_, dialled) = handshake(server, move |io| client.upgrade_outbound(io, PROTOCOL));
        dialled
            .map(|_| ())
            .expect_err("the handshake succeeded")
            .to_string()
    }

    #[test]
    fn a_certificate_without_the_libp2p_extension_is_refused() {
        let plain = rcgen::generate_simple_self_signed(vec!["peer".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(plain.key_pair.serialize_der().into());
        let err = refused_by_our_client(plain_server(plain.cert.der().clone(), key));
        assert!(err.contains("certificate"), "{err}");
    }

    #[test]
    fn a_peer_replaying_another_peers_certificate_without_its_key_is_refused() {
        // A genuine certificate of the victim, but the handshake is signed
        // with the impostor's own certificate key.
        let (victims, _) = certificate::generate(&Keypair::generate_ed25519()).unwrap();
        let (_, impostors_key) = certificate::generate(&Keypair::generate_ed25519()).unwrap();
        let err = refused_by_our_client(plain_server(victims, impostors_key));
        assert!(err.contains("BadSignature"), "{err}");
    }

    #[test]
    fn aes_leads_only_with_hardware_support() {
        assert_eq!(cipher_suites(true)[0], TLS13_AES_128_GCM_SHA256);
        assert_eq!(cipher_suites(false)[0], TLS13_CHACHA20_POLY1305_SHA256);
        assert_eq!(cipher_suites(true).len(), 3);
        assert_eq!(cipher_suites(false).len(), 3);
    }
}
