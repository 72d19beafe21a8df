import NIOCore
import NIOSSL

/// The names a TLS peer's certificate was issued to, for binding a connection to the host (or admin) it names.
public enum ClientCertificate {
    /// The subject's common names and the DNS subjectAltNames of the certificate the peer presented on `pipeline`
    /// (which must hold the TLS handler and have finished its handshake; call on the channel's event loop).
    /// Empty when the peer presented none or no TLS handler is there.
    public static func names(in pipeline: ChannelPipeline.SynchronousOperations) -> [String] {
        guard let certificate = try? pipeline.nioSSL_peerCertificate() else { return [] }
        var names = certificate.subjectName.filter { $0.type == .commonName }.map(\.value)
        for name in certificate._subjectAlternativeNames() where name.nameType == .dnsName {
            names.append(String(decoding: name.contents, as: UTF8.self))
        }
        return names
    }
}
