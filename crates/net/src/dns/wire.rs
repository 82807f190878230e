//! Wire-format helpers: header peeking, response building, size-limited encoding
//! (RFC 1035 4.1 / 4.2.1, RFC 2181 9 truncation, RFC 6891 EDNS).

use hickory_proto::op::{emit_message_parts, Edns, Message, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// Length of the fixed DNS header (RFC 1035 4.1.1).
pub(crate) const HEADER_LEN: usize = 12;
/// UDP payload size without EDNS (RFC 1035 4.2.1).
pub(crate) const UDP_MIN: usize = 512;
/// Largest UDP answer we send, whatever the client's EDNS size (RFC 6891 6.2.5 lets the
/// responder use a smaller size; this keeps datagrams sendable and unfragmented in practice).
pub(crate) const UDP_MAX: usize = 4096;
/// The UDP payload size we advertise in our OPT record (DNS flag day 2020 value).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// Maximum DNS message over TCP (16-bit length prefix, RFC 1035 4.2.2).
pub(crate) const TCP_MAX: usize = 65535;
/// Wire size of an OPT RR without options: root name, type, class, ttl, rdlength.
const OPT_LEN: usize = 11;

/// QR bit (byte 2).
const QR: u8 = 0x80;
/// TC bit (byte 2).
const TC: u8 = 0x02;

/// True if the message's QR bit says "response". Needs a full header.
pub(crate) fn is_response(msg: &[u8]) -> bool {
    msg.len() >= HEADER_LEN && msg[2] & QR != 0
}

/// True if the message's TC bit is set. Needs a full header.
pub(crate) fn is_truncated(msg: &[u8]) -> bool {
    msg.len() >= HEADER_LEN && msg[2] & TC != 0
}

/// The response code (low 4 bits, header only).
pub(crate) fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(0, |b| b & 0x0f)
}

fn count(msg: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]))
}

/// Cheap sanity check of a query header before full parsing, so hostile counts cannot make
/// the decoder reserve large vectors: exactly one question, and at least 11 bytes of message
/// left for every announced record (the smallest possible RR). Needs a full header.
pub(crate) fn plausible_counts(msg: &[u8]) -> bool {
    let records = count(msg, 6) + count(msg, 8) + count(msg, 10);
    count(msg, 4) == 1 && records * 11 <= msg.len() - HEADER_LEN
}

/// A header-only error reply built from the raw query header (id, opcode, RD copied; QR set,
/// all counts zero). Used when the query cannot be parsed (RFC 1035 4.1.1 FORMERR).
pub(crate) fn raw_error(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0] = query[0];
    out[1] = query[1];
    // QR | opcode (bits 3..6 of byte 2) | RD (bit 0 of byte 2).
    out[2] = QR | (query[2] & 0x78) | (query[2] & 0x01);
    // RA set; rcode low bits.
    out[3] = 0x80 | (rcode.low() & 0x0f);
    out
}

/// The byte range of the (single) question section of a message, name and type/class,
/// if the name is written without compression pointers.
pub(crate) fn question(msg: &[u8]) -> Option<&[u8]> {
    if msg.len() < HEADER_LEN || count(msg, 4) != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    msg.get(HEADER_LEN..at + 4)
}

/// Does `reply` answer the question `q` (as returned by [`question`])? The name is compared
/// case-insensitively, type and class exactly. Replies without a question section (some
/// servers' FORMERR/SERVFAIL) and an empty `q` (unknown) are accepted.
pub(crate) fn answers_question(reply: &[u8], q: &[u8]) -> bool {
    if reply.len() < HEADER_LEN {
        return false;
    }
    let qd = count(reply, 4);
    if qd == 0 || q.is_empty() {
        return true;
    }
    if qd != 1 || reply.len() < HEADER_LEN + q.len() {
        return false;
    }
    let got = &reply[HEADER_LEN..HEADER_LEN + q.len()];
    let name_len = q.len() - 4;
    got[..name_len].eq_ignore_ascii_case(&q[..name_len]) && got[name_len..] == q[name_len..]
}

/// A response skeleton for `req`: id, opcode, RD and CD copied, RA set, the question echoed,
/// and an OPT record if the request had one (RFC 6891 6.1.1).
pub(crate) fn response(req: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::response(req.id, req.op_code);
    m.metadata.recursion_desired = req.recursion_desired;
    m.metadata.checking_disabled = req.checking_disabled;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.queries = req.queries.clone();
    if req.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_version(0);
        m.edns = Some(edns);
    }
    m
}

/// Encodes without a size limit other than the 64 KiB wire maximum.
fn encode_plain(msg: &Message) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(UDP_MIN);
    let mut enc = BinEncoder::new(&mut buf);
    msg.emit(&mut enc).ok()?;
    let end = enc.offset();
    buf.truncate(end);
    Some(buf)
}

/// How many of `msg`'s answers fit into `budget` bytes together with header and question.
fn answers_fitting(msg: &Message, budget: usize) -> usize {
    let mut buf = Vec::with_capacity(budget);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_max_size(u16::try_from(budget).unwrap_or(u16::MAX));
    let none: [Record; 0] = [];
    match emit_message_parts(
        &msg.metadata,
        &mut msg.queries.iter(),
        &mut msg.answers.iter(),
        &mut none.iter(),
        &mut none.iter(),
        None,
        None,
        &mut enc,
    ) {
        Ok(header) => usize::from(header.counts.answers),
        Err(_) => 0,
    }
}

/// Encodes `msg` into at most `limit` bytes. If it does not fit, authority and additional
/// records are dropped, as many answers are kept as fit (room is kept for the OPT record),
/// and TC is set (RFC 1035 4.1.1, RFC 2181 9), so the client can retry over TCP.
/// Falls back to a header-only SERVFAIL if the message cannot be encoded at all.
pub(crate) fn encode(mut msg: Message, limit: usize, query_hdr: &[u8]) -> Vec<u8> {
    if let Some(buf) = encode_plain(&msg) {
        if buf.len() <= limit && !buf.is_empty() {
            return buf;
        }
    }
    msg.authorities.clear();
    msg.additionals.clear();
    msg.metadata.truncation = true;
    let opt = if msg.edns.is_some() { OPT_LEN } else { 0 };
    let keep = answers_fitting(&msg, limit.saturating_sub(opt));
    msg.answers.truncate(keep);
    encode_plain(&msg).unwrap_or_else(|| raw_error(query_hdr, ResponseCode::ServFail))
}

/// Fits an upstream reply into `limit` bytes for a UDP client: returned unchanged if it fits,
/// else reduced to header + question (+ OPT) with TC set (RFC 2181 9).
pub(crate) fn truncate_reply(reply: Vec<u8>, limit: usize) -> Vec<u8> {
    if reply.len() <= limit || reply.len() < HEADER_LEN {
        return reply;
    }
    if let Ok(msg) = Message::from_vec(&reply) {
        if let Some(buf) = encode_plain(&msg.truncate()) {
            if buf.len() <= limit {
                return buf;
            }
        }
    }
    let mut out = reply[..HEADER_LEN].to_vec();
    out[2] |= TC;
    out[4..].fill(0);
    out
}

/// Copies `id` into the header of `msg`. Needs a full header.
pub(crate) fn set_id(msg: &mut [u8], id: [u8; 2]) {
    if msg.len() >= 2 {
        msg[0] = id[0];
        msg[1] = id[1];
    }
}
