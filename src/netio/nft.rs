//! A small nftables client over netlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`),
//! written for the multicast forwarding backend: it owns the encoding of tables, chains,
//! rules and their expressions, sets and maps and their elements, and counter objects; the
//! batch transaction (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`, every message acked,
//! the first failing message named with its errno); and the decoding of what the kernel sends
//! back (acks, object and table dumps). It knows nothing of multicast.
//!
//! Decoding is total: every function here that reads kernel bytes checks each length against
//! what is left and stops (or returns `None`) on anything malformed, never panicking.
//!
//! Wire format (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`):
//!
//! ```text
//!  0               1               2               3
//!  +---------------+---------------+---------------+---------------+
//!  |                    nlmsg_len (host order)                     |
//!  +-------------------------------+-------------------------------+
//!  |  nlmsg_type (subsys<<8 | msg) |          nlmsg_flags          |
//!  +-------------------------------+-------------------------------+
//!  |                          nlmsg_seq                            |
//!  +---------------------------------------------------------------+
//!  |                          nlmsg_pid                            |
//!  +---------------+---------------+-------------------------------+
//!  | nfgen_family  |    version    |     res_id (big endian)       |
//!  +---------------+---------------+-------------------------------+
//!  | nla_len (host)                | nla_type (0x8000 = nested)    |  attributes, each
//!  +-------------------------------+-------------------------------+  padded to 4 bytes
//!  |  payload (integers big endian, except register contents)     |
//! ```

use super::socket;
use crate::bytes::Reader;
use socket2::Socket;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

// --- netlink ---------------------------------------------------------------------------------

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_F_NET_BYTEORDER: u16 = 0x4000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
const NLA_HDRLEN: usize = 4;

/// Length of the `struct nfgenmsg` after the netlink header.
pub const NFGENMSG_LEN: usize = 4;

pub const NFNL_SUBSYS_ULOG: u16 = 4;
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

pub const NFPROTO_UNSPEC: u8 = 0;
pub const NFPROTO_NETDEV: u8 = 5;

// --- nf_tables messages and attributes (linux/netfilter/nf_tables.h) -------------------------

pub const NFT_MSG_NEWTABLE: u16 = 0;
pub const NFT_MSG_GETTABLE: u16 = 1;
pub const NFT_MSG_DELTABLE: u16 = 2;
pub const NFT_MSG_NEWCHAIN: u16 = 3;
pub const NFT_MSG_DELCHAIN: u16 = 5;
pub const NFT_MSG_NEWRULE: u16 = 6;
pub const NFT_MSG_DELRULE: u16 = 8;
pub const NFT_MSG_NEWSET: u16 = 9;
pub const NFT_MSG_DELSET: u16 = 11;
pub const NFT_MSG_NEWSETELEM: u16 = 12;
pub const NFT_MSG_DELSETELEM: u16 = 14;
pub const NFT_MSG_NEWOBJ: u16 = 18;
pub const NFT_MSG_GETOBJ: u16 = 19;
pub const NFT_MSG_DELOBJ: u16 = 20;

const NFTA_LIST_ELEM: u16 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
/// The table disappears when the netlink socket that created it closes.
pub const NFT_TABLE_F_OWNER: u32 = 0x2;

const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;

const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DATA_TYPE: u16 = 6;
const NFTA_SET_DATA_LEN: u16 = 7;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_DESC_SIZE: u16 = 1;

pub const NFT_SET_CONSTANT: u32 = 0x2;
pub const NFT_SET_MAP: u32 = 0x8;
pub const NFT_SET_TIMEOUT: u32 = 0x10;
pub const NFT_SET_EVAL: u32 = 0x20;

/// Set data type of verdict maps.
pub const NFT_DATA_VERDICT: u32 = 0xffff_ff00;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;

const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

const NFTA_OBJ_TABLE: u16 = 1;
const NFTA_OBJ_NAME: u16 = 2;
const NFTA_OBJ_TYPE: u16 = 3;
const NFTA_OBJ_DATA: u16 = 4;
pub const NFT_OBJECT_COUNTER: u32 = 1;
const NFTA_COUNTER_BYTES: u16 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;

/// Netdev hook numbers.
pub const NF_NETDEV_INGRESS: u32 = 0;
/// Verdicts (`linux/netfilter.h`, `nf_tables.h`).
pub const NF_DROP: u32 = 0;
pub const NF_ACCEPT: u32 = 1;
const NFT_CONTINUE: i32 = -1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_RETURN: i32 = -5;

/// Registers: the verdict, four 16-byte registers, and sixteen 4-byte ones that overlay them.
pub const REG_VERDICT: u32 = 0;
pub const REG_1: u32 = 1;
pub const REG_2: u32 = 2;
/// The 4-byte register `n` (0..=15); `reg32(0)` overlays the start of [`REG_1`].
pub const fn reg32(n: u32) -> u32 {
    8 + n
}

/// Payload bases.
pub const PAYLOAD_LL: u32 = 0;
pub const PAYLOAD_NETWORK: u32 = 1;

/// Meta keys.
pub const META_LEN: u32 = 0;
pub const META_PROTOCOL: u32 = 1;
pub const META_IIF: u32 = 4;

/// Comparison operators of `cmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq = 0,
    Neq = 1,
    Lt = 2,
    Lte = 3,
    Gt = 4,
    Gte = 5,
}

/// A verdict, in a rule (immediate to the verdict register) or as map data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(String),
    Goto(String),
}

impl Verdict {
    fn code(&self) -> i32 {
        match self {
            Verdict::Accept => NF_ACCEPT as i32,
            Verdict::Drop => NF_DROP as i32,
            Verdict::Continue => NFT_CONTINUE,
            Verdict::Return => NFT_RETURN,
            Verdict::Jump(_) => NFT_JUMP,
            Verdict::Goto(_) => NFT_GOTO,
        }
    }

    fn encode(&self, w: &mut AttrWriter) {
        w.nest(NFTA_DATA_VERDICT, |w| {
            w.be32(NFTA_VERDICT_CODE, self.code() as u32);
            if let Verdict::Jump(c) | Verdict::Goto(c) = self {
                w.str(NFTA_VERDICT_CHAIN, c);
            }
        });
    }
}

/// Data of an element or an immediate: a value (raw bytes) or a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Value(Vec<u8>),
    Verdict(Verdict),
}

impl Data {
    fn encode(&self, w: &mut AttrWriter, ty: u16) {
        w.nest(ty, |w| match self {
            Data::Value(v) => {
                w.bytes(NFTA_DATA_VALUE, v);
            }
            Data::Verdict(v) => v.encode(w),
        });
    }
}

/// One expression of a rule. Registers are the `REG_*`/[`reg32`] numbers; values compared
/// with or loaded into registers are raw bytes in the order the packet or kernel holds them
/// (`meta iif` and `meta len` are host-endian u32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta load key => dreg`.
    Meta {
        key: u32,
        dreg: u32,
    },
    /// `payload load len @ base + offset => dreg`.
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `payload write sreg => len @ base + offset`, no checksum update.
    PayloadWrite {
        base: u32,
        offset: u32,
        len: u32,
        sreg: u32,
    },
    Cmp {
        sreg: u32,
        op: CmpOp,
        data: Vec<u8>,
    },
    /// `dreg = (sreg & mask) ^ xor`, `mask.len()` bytes.
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// Host to network order of `len` bytes in units of `size` (`cmp` with `lt`/`gt` compares
    /// bytes, so host-endian numbers are turned big endian first).
    Hton {
        sreg: u32,
        dreg: u32,
        len: u32,
        size: u32,
    },
    Immediate {
        dreg: u32,
        data: Vec<u8>,
    },
    /// Immediate to the verdict register.
    Verdict(Verdict),
    /// Set membership (no `dreg`) or map lookup into `dreg` (a verdict map: [`REG_VERDICT`]).
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        invert: bool,
    },
    /// `add @set { key timeout t }` from the packet path.
    DynsetAdd {
        set: String,
        sreg_key: u32,
        timeout_ms: Option<u64>,
    },
    /// Reference to a named stateful object (a counter).
    Objref {
        obj_type: u32,
        name: String,
    },
    /// `limit rate rate/unit burst b packets`.
    Limit {
        rate: u64,
        unit_secs: u64,
        burst: u32,
    },
    /// `log group g snaplen s` (NFLOG), with its queue threshold (0: the instance's).
    Log {
        group: u16,
        snaplen: u32,
        qthreshold: u16,
    },
    /// Duplicate the packet out of the device whose ifindex (host-endian u32) is in `sreg_dev`.
    Dup {
        sreg_dev: u32,
    },
    /// An anonymous counter.
    Counter,
}

// Expression attribute numbers.
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_PAYLOAD_SREG: u16 = 5;
const NFTA_PAYLOAD_CSUM_TYPE: u16 = 6;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_BYTEORDER_SREG: u16 = 1;
const NFTA_BYTEORDER_DREG: u16 = 2;
const NFTA_BYTEORDER_OP: u16 = 3;
const NFTA_BYTEORDER_LEN: u16 = 4;
const NFTA_BYTEORDER_SIZE: u16 = 5;
const NFT_BYTEORDER_HTON: u32 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_DREG: u16 = 3;
const NFTA_LOOKUP_FLAGS: u16 = 5;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFTA_DYNSET_SET_NAME: u16 = 1;
const NFTA_DYNSET_OP: u16 = 3;
const NFTA_DYNSET_SREG_KEY: u16 = 4;
const NFTA_DYNSET_TIMEOUT: u16 = 6;
const NFT_DYNSET_OP_ADD: u32 = 0;
const NFTA_OBJREF_IMM_TYPE: u16 = 1;
const NFTA_OBJREF_IMM_NAME: u16 = 2;
const NFTA_LIMIT_RATE: u16 = 1;
const NFTA_LIMIT_UNIT: u16 = 2;
const NFTA_LIMIT_BURST: u16 = 3;
const NFTA_LIMIT_TYPE: u16 = 4;
const NFT_LIMIT_PKTS: u32 = 0;
const NFTA_LOG_GROUP: u16 = 1;
const NFTA_LOG_SNAPLEN: u16 = 3;
const NFTA_LOG_QTHRESHOLD: u16 = 4;
const NFTA_DUP_SREG_DEV: u16 = 2;

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } => "meta",
            Expr::Payload { .. } | Expr::PayloadWrite { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Hton { .. } => "byteorder",
            Expr::Immediate { .. } | Expr::Verdict(_) => "immediate",
            Expr::Lookup { .. } => "lookup",
            Expr::DynsetAdd { .. } => "dynset",
            Expr::Objref { .. } => "objref",
            Expr::Limit { .. } => "limit",
            Expr::Log { .. } => "log",
            Expr::Dup { .. } => "dup",
            Expr::Counter => "counter",
        }
    }

    /// Writes the expression as one `NFTA_LIST_ELEM` of a rule's expression list.
    pub fn encode(&self, w: &mut AttrWriter) {
        w.nest(NFTA_LIST_ELEM, |w| {
            w.str(NFTA_EXPR_NAME, self.name());
            w.nest(NFTA_EXPR_DATA, |w| self.encode_data(w));
        });
    }

    fn encode_data(&self, w: &mut AttrWriter) {
        match self {
            Expr::Meta { key, dreg } => {
                w.be32(NFTA_META_KEY, *key).be32(NFTA_META_DREG, *dreg);
            }
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                w.be32(NFTA_PAYLOAD_DREG, *dreg)
                    .be32(NFTA_PAYLOAD_BASE, *base)
                    .be32(NFTA_PAYLOAD_OFFSET, *offset)
                    .be32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::PayloadWrite {
                base,
                offset,
                len,
                sreg,
            } => {
                w.be32(NFTA_PAYLOAD_SREG, *sreg)
                    .be32(NFTA_PAYLOAD_BASE, *base)
                    .be32(NFTA_PAYLOAD_OFFSET, *offset)
                    .be32(NFTA_PAYLOAD_LEN, *len)
                    .be32(NFTA_PAYLOAD_CSUM_TYPE, 0);
            }
            Expr::Cmp { sreg, op, data } => {
                w.be32(NFTA_CMP_SREG, *sreg).be32(NFTA_CMP_OP, *op as u32);
                Data::Value(data.clone()).encode(w, NFTA_CMP_DATA);
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                w.be32(NFTA_BITWISE_SREG, *sreg)
                    .be32(NFTA_BITWISE_DREG, *dreg)
                    .be32(NFTA_BITWISE_LEN, mask.len() as u32);
                Data::Value(mask.clone()).encode(w, NFTA_BITWISE_MASK);
                Data::Value(xor.clone()).encode(w, NFTA_BITWISE_XOR);
            }
            Expr::Hton {
                sreg,
                dreg,
                len,
                size,
            } => {
                w.be32(NFTA_BYTEORDER_SREG, *sreg)
                    .be32(NFTA_BYTEORDER_DREG, *dreg)
                    .be32(NFTA_BYTEORDER_OP, NFT_BYTEORDER_HTON)
                    .be32(NFTA_BYTEORDER_LEN, *len)
                    .be32(NFTA_BYTEORDER_SIZE, *size);
            }
            Expr::Immediate { dreg, data } => {
                w.be32(NFTA_IMMEDIATE_DREG, *dreg);
                Data::Value(data.clone()).encode(w, NFTA_IMMEDIATE_DATA);
            }
            Expr::Verdict(v) => {
                w.be32(NFTA_IMMEDIATE_DREG, REG_VERDICT);
                Data::Verdict(v.clone()).encode(w, NFTA_IMMEDIATE_DATA);
            }
            Expr::Lookup {
                set,
                sreg,
                dreg,
                invert,
            } => {
                w.str(NFTA_LOOKUP_SET, set).be32(NFTA_LOOKUP_SREG, *sreg);
                if let Some(d) = dreg {
                    w.be32(NFTA_LOOKUP_DREG, *d);
                }
                if *invert {
                    w.be32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                }
            }
            Expr::DynsetAdd {
                set,
                sreg_key,
                timeout_ms,
            } => {
                w.str(NFTA_DYNSET_SET_NAME, set)
                    .be32(NFTA_DYNSET_OP, NFT_DYNSET_OP_ADD)
                    .be32(NFTA_DYNSET_SREG_KEY, *sreg_key);
                if let Some(t) = timeout_ms {
                    w.be64(NFTA_DYNSET_TIMEOUT, *t);
                }
            }
            Expr::Objref { obj_type, name } => {
                w.be32(NFTA_OBJREF_IMM_TYPE, *obj_type)
                    .str(NFTA_OBJREF_IMM_NAME, name);
            }
            Expr::Limit {
                rate,
                unit_secs,
                burst,
            } => {
                w.be64(NFTA_LIMIT_RATE, *rate)
                    .be64(NFTA_LIMIT_UNIT, *unit_secs)
                    .be32(NFTA_LIMIT_BURST, *burst)
                    .be32(NFTA_LIMIT_TYPE, NFT_LIMIT_PKTS);
            }
            Expr::Log {
                group,
                snaplen,
                qthreshold,
            } => {
                w.be16(NFTA_LOG_GROUP, *group)
                    .be32(NFTA_LOG_SNAPLEN, *snaplen)
                    .be16(NFTA_LOG_QTHRESHOLD, *qthreshold);
            }
            Expr::Dup { sreg_dev } => {
                w.be32(NFTA_DUP_SREG_DEV, *sreg_dev);
            }
            Expr::Counter => {
                w.be64(NFTA_COUNTER_BYTES, 0).be64(NFTA_COUNTER_PACKETS, 0);
            }
        }
    }
}

// --- attribute encoder -----------------------------------------------------------------------

/// Builds a sequence of netlink attributes. An attribute or nest longer than 65535 bytes (the
/// most `nla_len` holds) marks the writer as overflowed instead of producing a wrong length.
#[derive(Debug, Clone, Default)]
pub struct AttrWriter {
    buf: Vec<u8>,
    overflow: bool,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl AttrWriter {
    pub fn new() -> AttrWriter {
        AttrWriter::default()
    }

    pub fn bytes(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = NLA_HDRLEN + data.len();
        if len > u16::MAX as usize {
            self.overflow = true;
            return self;
        }
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(pad4(self.buf.len()), 0);
        self
    }

    pub fn u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.bytes(ty, &[v])
    }

    pub fn be16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    pub fn be64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    /// A NUL-terminated string.
    pub fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.bytes(ty, &v)
    }

    /// A nested attribute (flagged `NLA_F_NESTED`) holding what `f` writes.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut AttrWriter)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        let len = self.buf.len() - start;
        if len > u16::MAX as usize {
            self.overflow = true;
            self.buf.truncate(start);
            return self;
        }
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// Appends one netlink message with a `nfgenmsg` header and `attrs` as payload.
pub fn put_message(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[u8],
) {
    let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.push(family);
    out.push(0); // NFNETLINK_V0
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(attrs);
    out.resize(pad4(out.len()), 0);
}

// --- decoder ---------------------------------------------------------------------------------

/// One netlink message as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// What follows the netlink header (for nfnetlink messages: `nfgenmsg`, then attributes).
    pub payload: &'a [u8],
}

/// The messages in a datagram; stops at the first malformed header.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    buf: &'a [u8],
}

pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf }
}

impl<'a> Iterator for Messages<'a> {
    type Item = NlMsg<'a>;

    fn next(&mut self) -> Option<NlMsg<'a>> {
        let mut r = Reader::new(self.buf);
        let len = r.u32_ne().ok()? as usize;
        let (ty, flags, seq, pid) = (r.u16_ne(), r.u16_ne(), r.u32_ne(), r.u32_ne());
        let payload = len.checked_sub(NLMSG_HDRLEN).and_then(|n| r.take(n).ok());
        let (Ok(ty), Ok(flags), Ok(seq), Ok(pid), Some(payload)) = (ty, flags, seq, pid, payload)
        else {
            self.buf = &[];
            return None;
        };
        self.buf = self.buf.get(pad4(len)..).unwrap_or(&[]);
        Some(NlMsg {
            ty,
            flags,
            seq,
            pid,
            payload,
        })
    }
}

/// The attributes in a buffer as (type without flags, payload); stops at the first malformed
/// one.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
}

pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { buf }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let mut r = Reader::new(self.buf);
        let (len, ty) = (usize::from(r.u16_ne().ok()?), r.u16_ne().ok()?);
        let Some(value) = len.checked_sub(NLA_HDRLEN).and_then(|n| r.take(n).ok()) else {
            self.buf = &[];
            return None;
        };
        self.buf = self.buf.get(pad4(len)..).unwrap_or(&[]);
        Some((ty & NLA_TYPE_MASK, value))
    }
}

/// The first attribute of type `ty`.
pub fn find_attr(buf: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(buf).find(|(t, _)| *t == ty).map(|(_, v)| v)
}

/// The big-endian integer an attribute value starts with.
pub fn be16(b: &[u8]) -> Option<u16> {
    Reader::new(b).u16().ok()
}

pub fn be32(b: &[u8]) -> Option<u32> {
    Reader::new(b).u32().ok()
}

pub fn be64(b: &[u8]) -> Option<u64> {
    Reader::new(b).u64().ok()
}

/// A string attribute up to its first NUL (lossy UTF-8).
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The attributes of an nfnetlink message (after `nfgenmsg`); empty when too short.
pub fn nfnl_attrs(payload: &[u8]) -> &[u8] {
    payload.get(NFGENMSG_LEN..).unwrap_or(&[])
}

/// What an `NLMSG_ERROR` message says: 0 for an ack, or a positive errno.
pub fn ack_errno(m: &NlMsg<'_>) -> Option<i32> {
    if m.ty != NLMSG_ERROR {
        return None;
    }
    let e = Reader::new(m.payload).u32_ne().ok()? as i32;
    Some(e.checked_neg().unwrap_or(i32::MAX))
}

/// A counter object from a `NEWOBJ` message of a dump: (name, packets, bytes); None for other
/// object types or malformed messages.
pub fn parse_counter_obj(payload: &[u8]) -> Option<(String, u64, u64)> {
    let a = nfnl_attrs(payload);
    let name = cstr(find_attr(a, NFTA_OBJ_NAME)?);
    if be32(find_attr(a, NFTA_OBJ_TYPE)?)? != NFT_OBJECT_COUNTER {
        return None;
    }
    let data = find_attr(a, NFTA_OBJ_DATA)?;
    let packets = find_attr(data, NFTA_COUNTER_PACKETS).and_then(be64)?;
    let bytes = find_attr(data, NFTA_COUNTER_BYTES).and_then(be64)?;
    Some((name, packets, bytes))
}

/// A table from a `NEWTABLE` message of a dump: (family, name, flags).
pub fn parse_table(payload: &[u8]) -> Option<(u8, String, u32)> {
    let family = *payload.first()?;
    let a = nfnl_attrs(payload);
    let name = cstr(find_attr(a, NFTA_TABLE_NAME)?);
    let flags = find_attr(a, NFTA_TABLE_FLAGS).and_then(be32).unwrap_or(0);
    Some((family, name, flags))
}

// --- batches ---------------------------------------------------------------------------------

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub hooknum: u32,
    pub priority: i32,
    /// The device of a netdev hook.
    pub dev: String,
    /// `NF_ACCEPT` or `NF_DROP`.
    pub policy: u32,
}

/// A set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    pub name: String,
    pub flags: u32,
    /// nft's type id for listing (0: none).
    pub key_type: u32,
    pub key_len: u32,
    /// Map data: [`NFT_DATA_VERDICT`] or a value type with its length.
    pub data: Option<(u32, u32)>,
    /// Most elements (0: no bound).
    pub size: u32,
    /// Default element timeout.
    pub timeout_ms: Option<u64>,
}

/// A set element: key, map data, timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elem {
    pub key: Vec<u8>,
    pub data: Option<Data>,
    pub timeout_ms: Option<u64>,
}

impl Elem {
    pub fn key(key: Vec<u8>) -> Elem {
        Elem {
            key,
            data: None,
            timeout_ms: None,
        }
    }
}

#[derive(Debug, Clone)]
struct PendingMsg {
    ty: u16,
    flags: u16,
    attrs: Vec<u8>,
    what: String,
}

/// Messages to commit as one transaction, all in one family and one table.
#[derive(Debug, Clone)]
pub struct Batch {
    family: u8,
    table: String,
    msgs: Vec<PendingMsg>,
    /// A message that could not be encoded (index, what).
    broken: Option<(usize, String)>,
}

/// Why a transaction was refused: the first failing message (by index in the batch and by
/// what it did) and the errno the kernel gave, or a failure of the batch as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub index: Option<usize>,
    pub what: String,
    pub errno: i32,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = io::Error::from_raw_os_error(self.errno);
        match self.index {
            Some(i) => write!(f, "message {i} ({}): {e}", self.what),
            None => write!(f, "{}: {e}", self.what),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<BatchError> for io::Error {
    fn from(e: BatchError) -> io::Error {
        io::Error::new(io::Error::from_raw_os_error(e.errno).kind(), e.to_string())
    }
}

impl Batch {
    pub fn new(family: u8, table: &str) -> Batch {
        Batch {
            family,
            table: table.to_string(),
            msgs: Vec::new(),
            broken: None,
        }
    }

    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// What message `i` does.
    pub fn what(&self, i: usize) -> Option<&str> {
        self.msgs.get(i).map(|m| m.what.as_str())
    }

    fn push(&mut self, ty: u16, flags: u16, w: AttrWriter, what: String) {
        if w.overflowed() && self.broken.is_none() {
            self.broken = Some((self.msgs.len(), what.clone()));
        }
        self.msgs.push(PendingMsg {
            ty,
            flags: flags | NLM_F_REQUEST | NLM_F_ACK,
            attrs: w.buf,
            what,
        });
    }

    /// Creates the table (fails if it exists).
    pub fn add_table(&mut self, flags: u32) {
        let mut w = AttrWriter::new();
        w.str(NFTA_TABLE_NAME, &self.table)
            .be32(NFTA_TABLE_FLAGS, flags);
        let what = format!("add table {}", self.table);
        self.push(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, w, what);
    }

    pub fn del_table(&mut self) {
        let mut w = AttrWriter::new();
        w.str(NFTA_TABLE_NAME, &self.table);
        let what = format!("delete table {}", self.table);
        self.push(NFT_MSG_DELTABLE, 0, w, what);
    }

    /// Creates a chain; a base chain with `hook` (type `filter`).
    pub fn add_chain(&mut self, name: &str, hook: Option<&Hook>) {
        let mut w = AttrWriter::new();
        w.str(NFTA_CHAIN_TABLE, &self.table)
            .str(NFTA_CHAIN_NAME, name);
        if let Some(h) = hook {
            w.nest(NFTA_CHAIN_HOOK, |w| {
                w.be32(NFTA_HOOK_HOOKNUM, h.hooknum)
                    .be32(NFTA_HOOK_PRIORITY, h.priority as u32)
                    .str(NFTA_HOOK_DEV, &h.dev);
            })
            .be32(NFTA_CHAIN_POLICY, h.policy)
            .str(NFTA_CHAIN_TYPE, "filter");
        }
        self.push(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            w,
            format!("add chain {name}"),
        );
    }

    /// Deletes a chain with its rules.
    pub fn del_chain(&mut self, name: &str) {
        let mut w = AttrWriter::new();
        w.str(NFTA_CHAIN_TABLE, &self.table)
            .str(NFTA_CHAIN_NAME, name);
        self.push(NFT_MSG_DELCHAIN, 0, w, format!("delete chain {name}"));
    }

    /// Appends a rule to a chain.
    pub fn add_rule(&mut self, chain: &str, exprs: &[Expr]) {
        let mut w = AttrWriter::new();
        w.str(NFTA_RULE_TABLE, &self.table)
            .str(NFTA_RULE_CHAIN, chain)
            .nest(NFTA_RULE_EXPRESSIONS, |w| {
                for e in exprs {
                    e.encode(w);
                }
            });
        let what = format!("add rule to chain {chain}");
        self.push(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, w, what);
    }

    /// Deletes every rule of a chain.
    pub fn flush_chain(&mut self, chain: &str) {
        let mut w = AttrWriter::new();
        w.str(NFTA_RULE_TABLE, &self.table)
            .str(NFTA_RULE_CHAIN, chain);
        self.push(NFT_MSG_DELRULE, 0, w, format!("flush chain {chain}"));
    }

    pub fn add_set(&mut self, s: &SetSpec, id: u32) {
        let mut w = AttrWriter::new();
        w.str(NFTA_SET_TABLE, &self.table)
            .str(NFTA_SET_NAME, &s.name)
            .be32(NFTA_SET_FLAGS, s.flags)
            .be32(NFTA_SET_KEY_TYPE, s.key_type)
            .be32(NFTA_SET_KEY_LEN, s.key_len);
        if let Some((ty, len)) = s.data {
            w.be32(NFTA_SET_DATA_TYPE, ty);
            if ty != NFT_DATA_VERDICT {
                w.be32(NFTA_SET_DATA_LEN, len);
            }
        }
        if let Some(t) = s.timeout_ms {
            w.be64(NFTA_SET_TIMEOUT, t);
        }
        if s.size > 0 {
            w.nest(NFTA_SET_DESC, |w| {
                w.be32(NFTA_SET_DESC_SIZE, s.size);
            });
        }
        w.be32(NFTA_SET_ID, id);
        let what = format!("add set {}", s.name);
        self.push(NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, w, what);
    }

    pub fn del_set(&mut self, name: &str) {
        let mut w = AttrWriter::new();
        w.str(NFTA_SET_TABLE, &self.table).str(NFTA_SET_NAME, name);
        self.push(NFT_MSG_DELSET, 0, w, format!("delete set {name}"));
    }

    fn elems(&mut self, ty: u16, flags: u16, set: &str, elems: &[Elem], what: String) {
        let mut w = AttrWriter::new();
        w.str(NFTA_SET_ELEM_LIST_TABLE, &self.table)
            .str(NFTA_SET_ELEM_LIST_SET, set)
            .nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                for e in elems {
                    w.nest(NFTA_LIST_ELEM, |w| {
                        w.nest(NFTA_SET_ELEM_KEY, |w| {
                            w.bytes(NFTA_DATA_VALUE, &e.key);
                        });
                        if let Some(d) = &e.data {
                            d.encode(w, NFTA_SET_ELEM_DATA);
                        }
                        if let Some(t) = e.timeout_ms {
                            w.be64(NFTA_SET_ELEM_TIMEOUT, t);
                        }
                    });
                }
            });
        self.push(ty, flags, w, what);
    }

    /// Adds elements (an element already there with the same data is no error).
    pub fn add_elems(&mut self, set: &str, elems: &[Elem]) {
        let what = format!("add {} element(s) to set {set}", elems.len());
        self.elems(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, elems, what);
    }

    /// Deletes elements by key (data is ignored).
    pub fn del_elems(&mut self, set: &str, elems: &[Elem]) {
        let what = format!("delete {} element(s) from set {set}", elems.len());
        self.elems(NFT_MSG_DELSETELEM, 0, set, elems, what);
    }

    /// Creates a named counter.
    pub fn add_counter(&mut self, name: &str) {
        let mut w = AttrWriter::new();
        w.str(NFTA_OBJ_TABLE, &self.table)
            .str(NFTA_OBJ_NAME, name)
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER)
            .nest(NFTA_OBJ_DATA, |w| {
                w.be64(NFTA_COUNTER_BYTES, 0).be64(NFTA_COUNTER_PACKETS, 0);
            });
        let what = format!("add counter {name}");
        self.push(NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, w, what);
    }

    pub fn del_obj(&mut self, name: &str, obj_type: u32) {
        let mut w = AttrWriter::new();
        w.str(NFTA_OBJ_TABLE, &self.table)
            .str(NFTA_OBJ_NAME, name)
            .be32(NFTA_OBJ_TYPE, obj_type);
        self.push(NFT_MSG_DELOBJ, 0, w, format!("delete object {name}"));
    }

    /// The transaction as sent: BATCH_BEGIN with sequence `seq`, message `i` with `seq + 1 + i`,
    /// BATCH_END.
    pub fn encode(&self, seq: u32) -> Vec<u8> {
        let size: usize = self
            .msgs
            .iter()
            .map(|m| NLMSG_HDRLEN + NFGENMSG_LEN + pad4(m.attrs.len()))
            .sum();
        let mut out = Vec::with_capacity(size + 2 * (NLMSG_HDRLEN + NFGENMSG_LEN));
        put_message(
            &mut out,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        for (i, m) in self.msgs.iter().enumerate() {
            put_message(
                &mut out,
                (NFNL_SUBSYS_NFTABLES << 8) | m.ty,
                m.flags,
                seq.wrapping_add(1 + i as u32),
                self.family,
                0,
                &m.attrs,
            );
        }
        put_message(
            &mut out,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            seq.wrapping_add(1 + self.msgs.len() as u32),
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        out
    }
}

/// What the acks of a transaction sent with sequence `seq` and `n` messages say, fed datagram by
/// datagram.
#[derive(Debug, Clone)]
pub struct AckTracker {
    seq: u32,
    acked: Vec<bool>,
    remaining: usize,
    /// Lowest failing message index and its errno.
    first: Option<(usize, i32)>,
    /// An error on BATCH_BEGIN or BATCH_END: the transaction as a whole failed.
    batch: Option<i32>,
}

impl AckTracker {
    pub fn new(seq: u32, n: usize) -> AckTracker {
        AckTracker {
            seq,
            acked: vec![false; n],
            remaining: n,
            first: None,
            batch: None,
        }
    }

    /// Takes in one received datagram.
    pub fn feed(&mut self, buf: &[u8]) {
        for m in messages(buf) {
            let Some(errno) = ack_errno(&m) else { continue };
            let off = m.seq.wrapping_sub(self.seq) as usize;
            if off == 0 || off == self.acked.len() + 1 {
                if errno != 0 {
                    self.batch.get_or_insert(errno);
                }
            } else if let Some(a) = off.checked_sub(1).and_then(|i| self.acked.get_mut(i)) {
                if !*a {
                    *a = true;
                    self.remaining -= 1;
                }
                if errno != 0 && self.first.is_none_or(|(i, _)| off - 1 < i) {
                    self.first = Some((off - 1, errno));
                }
            }
        }
    }

    /// Every message acked.
    pub fn complete(&self) -> bool {
        self.remaining == 0
    }

    /// The batch failed as a whole (more acks may still come, but the answer is known).
    pub fn batch_failed(&self) -> bool {
        self.batch.is_some()
    }

    /// The outcome once complete (or once the batch failed).
    pub fn result(&self, batch: &Batch) -> Result<(), BatchError> {
        if let Some((i, errno)) = self.first {
            return Err(BatchError {
                index: Some(i),
                what: batch.what(i).unwrap_or("?").to_string(),
                errno,
            });
        }
        if let Some(errno) = self.batch {
            return Err(BatchError {
                index: None,
                what: "transaction".into(),
                errno,
            });
        }
        Ok(())
    }
}

// --- the socket ------------------------------------------------------------------------------

const RECV_BUF: usize = 256 * 1024;
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A netfilter netlink socket for nf_tables: transactions and dumps. Tables it creates with
/// [`NFT_TABLE_F_OWNER`] belong to it and go away when it closes.
pub struct NftSocket {
    sock: Socket,
    seq: AtomicU32,
    rcvbuf: AtomicUsize,
    sndbuf: AtomicUsize,
}

impl AsRawFd for NftSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl NftSocket {
    pub fn open() -> io::Result<NftSocket> {
        let sock = socket::netfilter(REPLY_TIMEOUT)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(NftSocket {
            sock,
            seq: AtomicU32::new(seed),
            rcvbuf: AtomicUsize::new(0),
            sndbuf: AtomicUsize::new(0),
        })
    }

    fn next_seq(&self, n: usize) -> u32 {
        self.seq.fetch_add(n as u32, Ordering::Relaxed)
    }

    /// Grows the socket buffers so that `send` bytes fit in one datagram and `acks` acks fit
    /// in the receive queue (the kernel charges each ack about a kilobyte).
    fn reserve(&self, send: usize, acks: usize) {
        use nix::sys::socket::{setsockopt, sockopt};
        let want = send + 64 * 1024;
        if want > self.sndbuf.load(Ordering::Relaxed) {
            let v = want.next_power_of_two();
            if setsockopt(&self.sock.as_fd(), sockopt::SndBufForce, &v).is_ok() {
                self.sndbuf.store(v, Ordering::Relaxed);
            }
        }
        let want = acks.saturating_mul(1024) + 256 * 1024;
        if want > self.rcvbuf.load(Ordering::Relaxed) {
            let v = want.next_power_of_two();
            if setsockopt(&self.sock.as_fd(), sockopt::RcvBufForce, &v).is_ok() {
                self.rcvbuf.store(v, Ordering::Relaxed);
            }
        }
    }

    fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        use nix::sys::socket::{recv, MsgFlags};
        let flags = if wait {
            MsgFlags::empty()
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        recv(self.sock.as_raw_fd(), buf, flags).map_err(io::Error::from)
    }

    /// Drops whatever an earlier exchange left in the receive queue.
    fn drain(&self, buf: &mut [u8]) {
        for _ in 0..1024 {
            match self.recv(buf, false) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    /// Commits `batch` as one transaction: all of it or nothing.
    pub fn commit(&self, batch: &Batch) -> Result<(), BatchError> {
        if let Some((i, what)) = &batch.broken {
            return Err(BatchError {
                index: Some(*i),
                what: format!("{what}: attribute longer than 65535 bytes"),
                errno: libc::EMSGSIZE,
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        let seq = self.next_seq(n + 2);
        let bytes = batch.encode(seq);
        self.reserve(bytes.len(), n);
        let mut buf = vec![0u8; RECV_BUF];
        self.drain(&mut buf);
        let whole = |what: &str, e: io::Error| BatchError {
            index: None,
            what: what.into(),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        };
        loop {
            match self.sock.send(&bytes) {
                Ok(k) if k == bytes.len() => break,
                Ok(_) => return Err(whole("send transaction", io::Error::other("short send"))),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(whole("send transaction", e)),
            }
        }
        let mut acks = AckTracker::new(seq, n);
        // The kernel handles the whole batch inside send(): every ack is queued by now; the
        // blocking reads with a timeout are a safety net.
        while !acks.complete() {
            match self.recv(&mut buf, !acks.batch_failed()) {
                Ok(k) => acks.feed(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) if acks.batch_failed() => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(whole("acks lost (receive queue overrun)", e));
                }
                Err(e) => return Err(whole("waiting for acks", e)),
            }
        }
        acks.result(batch)
    }

    /// Sends a dump request and hands each reply message's payload to `f`.
    fn dump(&self, msg: u16, family: u8, attrs: &[u8], mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let seq = self.next_seq(1);
        let mut out = Vec::new();
        put_message(
            &mut out,
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            0,
            attrs,
        );
        let mut buf = vec![0u8; RECV_BUF];
        self.drain(&mut buf);
        self.sock.send(&out)?;
        loop {
            let k = match self.recv(&mut buf, true) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for m in messages(&buf[..k]) {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => match ack_errno(&m) {
                        Some(0) => {}
                        Some(e) => return Err(io::Error::from_raw_os_error(e)),
                        None => return Err(io::Error::other("malformed netlink error")),
                    },
                    NLMSG_NOOP | NLMSG_OVERRUN => {}
                    _ => f(m.payload),
                }
            }
        }
    }

    /// Every counter object of a table: (name, packets, bytes).
    pub fn counters(&self, family: u8, table: &str) -> io::Result<Vec<(String, u64, u64)>> {
        let mut w = AttrWriter::new();
        w.str(NFTA_OBJ_TABLE, table)
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
        let mut out = Vec::new();
        self.dump(NFT_MSG_GETOBJ, family, w.as_bytes(), |p| {
            if let Some(c) = parse_counter_obj(p) {
                out.push(c);
            }
        })?;
        Ok(out)
    }

    /// The tables of a family ([`NFPROTO_UNSPEC`]: all): (family, name, flags).
    pub fn tables(&self, family: u8) -> io::Result<Vec<(u8, String, u32)>> {
        let mut out = Vec::new();
        self.dump(NFT_MSG_GETTABLE, family, &[], |p| {
            if let Some(t) = parse_table(p) {
                out.push(t);
            }
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut w = AttrWriter::new();
        w.str(1, "t").nest(2, |w| {
            w.be32(3, 0x0102_0304);
        });
        let mut want = Vec::new();
        want.extend_from_slice(&6u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(b"t\0\0\0");
        want.extend_from_slice(&12u16.to_ne_bytes());
        want.extend_from_slice(&(2u16 | 0x8000).to_ne_bytes());
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&3u16.to_ne_bytes());
        want.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(w.as_bytes(), &want[..]);
        let parsed: Vec<(u16, &[u8])> = attrs(w.as_bytes()).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(cstr(parsed[0].1), "t");
        assert_eq!(parsed[1].0, 2, "nested flag masked off");
        assert_eq!(find_attr(parsed[1].1, 3).and_then(be32), Some(0x0102_0304));
    }

    #[test]
    fn oversized_attribute_is_reported_not_truncated() {
        let mut w = AttrWriter::new();
        w.bytes(1, &vec![0u8; 70_000]);
        assert!(w.overflowed());
        let mut b = Batch::new(NFPROTO_NETDEV, "t");
        let big: Vec<Elem> = (0..10_000u32)
            .map(|i| Elem::key(i.to_be_bytes().to_vec()))
            .collect();
        b.add_elems("s", &big);
        let sock_less = b.broken.clone();
        assert_eq!(sock_less.map(|(i, _)| i), Some(0));
    }

    /// The same bytes `nft --debug=mnl add table netdev t` sends (with our seqs and flags).
    #[test]
    fn table_transaction_bytes() {
        let mut b = Batch::new(NFPROTO_NETDEV, "t");
        b.add_table(NFT_TABLE_F_OWNER);
        let got = b.encode(100);
        let mut want = hdr(20, 0x10, NLM_F_REQUEST, 100);
        want.extend_from_slice(&[0, 0, 0, 10]);
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        want.extend(hdr(36, 0x0a00, flags, 101));
        want.extend_from_slice(&[5, 0, 0, 0]);
        want.extend_from_slice(&6u16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(b"t\0\0\0");
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&2u16.to_ne_bytes());
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend(hdr(20, 0x11, NLM_F_REQUEST, 102));
        want.extend_from_slice(&[0, 0, 0, 10]);
        assert_eq!(got, want);
        let msgs: Vec<NlMsg> = messages(&got).collect();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1].seq, 101);
        assert_eq!(parse_table(msgs[1].payload), Some((5, "t".into(), 2)));
    }

    #[test]
    fn expression_encoding() {
        let mut w = AttrWriter::new();
        Expr::Cmp {
            sreg: reg32(0),
            op: CmpOp::Lte,
            data: vec![2],
        }
        .encode(&mut w);
        let (ty, elem) = attrs(w.as_bytes()).next().unwrap();
        assert_eq!(ty, NFTA_LIST_ELEM);
        assert_eq!(cstr(find_attr(elem, NFTA_EXPR_NAME).unwrap()), "cmp");
        let data = find_attr(elem, NFTA_EXPR_DATA).unwrap();
        assert_eq!(find_attr(data, NFTA_CMP_SREG).and_then(be32), Some(8));
        assert_eq!(find_attr(data, NFTA_CMP_OP).and_then(be32), Some(3));
        let v = find_attr(data, NFTA_CMP_DATA).unwrap();
        assert_eq!(find_attr(v, NFTA_DATA_VALUE), Some(&[2u8][..]));

        let mut w = AttrWriter::new();
        Expr::Verdict(Verdict::Goto("e1".into())).encode(&mut w);
        let (_, elem) = attrs(w.as_bytes()).next().unwrap();
        let data = find_attr(elem, NFTA_EXPR_DATA).unwrap();
        assert_eq!(find_attr(data, NFTA_IMMEDIATE_DREG).and_then(be32), Some(0));
        let d = find_attr(data, NFTA_IMMEDIATE_DATA).unwrap();
        let v = find_attr(d, NFTA_DATA_VERDICT).unwrap();
        assert_eq!(
            find_attr(v, NFTA_VERDICT_CODE).and_then(be32),
            Some(NFT_GOTO as u32)
        );
        assert_eq!(cstr(find_attr(v, NFTA_VERDICT_CHAIN).unwrap()), "e1");

        // Every kind encodes to a well-formed element with a name and data.
        let all = [
            Expr::Meta {
                key: META_IIF,
                dreg: reg32(1),
            },
            Expr::Payload {
                base: PAYLOAD_NETWORK,
                offset: 8,
                len: 32,
                dreg: REG_1,
            },
            Expr::PayloadWrite {
                base: PAYLOAD_LL,
                offset: 6,
                len: 6,
                sreg: reg32(2),
            },
            Expr::Bitwise {
                sreg: 8,
                dreg: 8,
                mask: vec![0x0f],
                xor: vec![0],
            },
            Expr::Hton {
                sreg: 8,
                dreg: 8,
                len: 4,
                size: 4,
            },
            Expr::Immediate {
                dreg: 8,
                data: vec![1, 2, 3, 4],
            },
            Expr::Lookup {
                set: "sg".into(),
                sreg: REG_1,
                dreg: Some(REG_VERDICT),
                invert: true,
            },
            Expr::DynsetAdd {
                set: "p".into(),
                sreg_key: REG_1,
                timeout_ms: Some(1000),
            },
            Expr::Objref {
                obj_type: NFT_OBJECT_COUNTER,
                name: "c1".into(),
            },
            Expr::Limit {
                rate: 200,
                unit_secs: 1,
                burst: 5,
            },
            Expr::Log {
                group: 7,
                snaplen: 64,
                qthreshold: 1,
            },
            Expr::Dup { sreg_dev: 9 },
            Expr::Counter,
        ];
        for e in all {
            let mut w = AttrWriter::new();
            e.encode(&mut w);
            let (_, elem) = attrs(w.as_bytes()).next().unwrap();
            assert_eq!(cstr(find_attr(elem, NFTA_EXPR_NAME).unwrap()), e.name());
            assert!(find_attr(elem, NFTA_EXPR_DATA).is_some());
        }
        let mut w = AttrWriter::new();
        Expr::Limit {
            rate: 200,
            unit_secs: 1,
            burst: 5,
        }
        .encode(&mut w);
        let (_, elem) = attrs(w.as_bytes()).next().unwrap();
        let d = find_attr(elem, NFTA_EXPR_DATA).unwrap();
        assert_eq!(find_attr(d, NFTA_LIMIT_RATE).and_then(be64), Some(200));
    }

    #[test]
    fn acks_name_the_first_failing_message() {
        let mut b = Batch::new(NFPROTO_NETDEV, "t");
        b.add_chain("a", None);
        b.add_rule("a", &[Expr::Counter]);
        b.add_rule("b", &[Expr::Counter]);
        let ack = |seq: u32, err: i32| {
            let mut v = hdr(36, NLMSG_ERROR, 0, seq);
            v.extend_from_slice(&err.to_ne_bytes());
            v.extend(hdr(16, 0x0a06, 0, seq));
            v
        };
        let mut t = AckTracker::new(10, 3);
        let mut d = ack(11, 0);
        d.extend(ack(12, 0));
        t.feed(&d);
        assert!(!t.complete());
        t.feed(&ack(13, -libc::ENOENT));
        assert!(t.complete());
        let e = t.result(&b).unwrap_err();
        assert_eq!(e.index, Some(2));
        assert_eq!(e.errno, libc::ENOENT);
        assert_eq!(e.what, "add rule to chain b");
        assert!(e.to_string().starts_with("message 2 (add rule to chain b)"));

        let mut t = AckTracker::new(10, 3);
        t.feed(&ack(10, -libc::EPERM));
        assert!(t.batch_failed());
        assert_eq!(t.result(&b).unwrap_err().index, None);

        let mut t = AckTracker::new(u32::MAX, 1);
        t.feed(&ack(0, 0));
        assert!(t.complete());
        assert!(t.result(&b).is_ok());
    }

    #[test]
    fn counter_object_and_truncations() {
        let mut w = AttrWriter::new();
        w.str(NFTA_OBJ_TABLE, "mldhb")
            .str(NFTA_OBJ_NAME, "c7")
            .be32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER)
            .nest(NFTA_OBJ_DATA, |w| {
                w.be64(NFTA_COUNTER_BYTES, 1500)
                    .be64(NFTA_COUNTER_PACKETS, 3);
            });
        let mut msg = Vec::new();
        put_message(
            &mut msg,
            0x0a12,
            NLM_F_MULTI,
            5,
            NFPROTO_NETDEV,
            0,
            w.as_bytes(),
        );
        let m = messages(&msg).next().unwrap();
        assert_eq!(parse_counter_obj(m.payload), Some(("c7".into(), 3, 1500)));
        // Every prefix and every single-byte corruption decodes without panicking.
        for n in 0..msg.len() {
            for m in messages(&msg[..n]) {
                let _ = parse_counter_obj(m.payload);
                let _ = parse_table(m.payload);
                let _ = ack_errno(&m);
            }
            let _ = parse_counter_obj(&msg[..n]);
        }
        for i in 0..msg.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut c = msg.clone();
                c[i] = v;
                for m in messages(&c) {
                    let _ = parse_counter_obj(m.payload);
                    let _ = parse_table(m.payload);
                    let _ = ack_errno(&m);
                }
            }
        }
    }

    #[test]
    fn decoder_rejects_bad_lengths() {
        assert_eq!(messages(&[]).count(), 0);
        assert_eq!(messages(&hdr(8, 1, 0, 0)).count(), 0);
        assert_eq!(messages(&hdr(4000, 1, 0, 0)).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
        assert_eq!(attrs(&[0xff, 0xff, 1, 0]).count(), 0);
        // A zero-length error message.
        let m = NlMsg {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 0,
            pid: 0,
            payload: &[],
        };
        assert_eq!(ack_errno(&m), None);
        let min = (i32::MIN).to_ne_bytes();
        let m = NlMsg { payload: &min, ..m };
        assert_eq!(ack_errno(&m), Some(i32::MAX));
    }
}
