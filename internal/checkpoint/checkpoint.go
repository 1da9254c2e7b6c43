// Package checkpoint is the on-disk form of a reader's checkpoint: what it delivered (identity,
// kind, name and last resourceVersion of every object, deleted ones it still remembers included)
// and each stream's resume point, under a fingerprint of what the reader reads. Floors are not
// kept: they guard against a lagging set of streams, and a restarted reader has none.
//
// # Format (version 1)
//
// All integers are unsigned varints (encoding/binary) unless a width is given; a string is its
// length and its bytes.
//
//	magic     4 bytes  "WLCP"
//	format    2 bytes  little-endian, 1
//	scope     32 bytes the fingerprint of what the reader reads (Checkpoint.Scope)
//	streams   count, then per stream: kind (1 byte), namespace, resume resourceVersion
//	objects   count, then per object: key (16 bytes: the UID's UUID bytes, or a hash of the
//	          UID), flags (1 byte: 1 dead, 2 void, 4 UID follows, 8 pending), [UID], kind (1 byte),
//	          name ("namespace/name", or "/name"), resourceVersion
//	checksum  4 bytes  little-endian CRC-32C of everything before it
//
// An object's resourceVersion is the filter's number for it (an integer version as
// itself, any other as a hash with the top bit set). An object costs 16 + 1 + 1 + name + about 4
// bytes.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Format is the version of the format Encode writes and Decode reads.
const Format = 1

// magic starts every checkpoint.
var magic = []byte("WLCP")

// Errors of Decode; test with errors.Is.
var (
	// ErrCorrupt: the bytes are not a checkpoint, or were changed or cut short.
	ErrCorrupt = errors.New("checkpoint corrupt")
	// ErrFormat: a checkpoint of another format version.
	ErrFormat = errors.New("checkpoint of another format version")
)

// Checkpoint is what a reader saves.
type Checkpoint struct {
	// Scope fingerprints what the reader reads; a reader refuses a checkpoint of another scope.
	Scope   [32]byte
	Streams []Stream
	Objects []Object
}

// Stream is one stream's resume point.
type Stream struct {
	Kind            uint8
	Namespace       string
	ResourceVersion string // "" when the stream had none
}

// Object is what the filter keeps of one identity.
type Object struct {
	Key     [16]byte
	UID     string // only for a UID that is not a canonical UUID (Key is then its hash)
	Kind    uint8
	Name    string // "namespace/name", or "/name"
	Version uint64
	Dead    bool // deleted: Version is the version at or below which it is known gone
	Void    bool // Version came from a history the server lost
	// Pending: added by the entry the consumer held when the checkpoint was taken, which it may or
	// may not have finished: that add is delivered again, or the object's delete if it is gone.
	Pending bool
}

const (
	flagDead = 1 << iota
	flagVoid
	flagUID
	flagPending
)

// Encode returns c in the format above.
func Encode(c *Checkpoint) []byte {
	b := make([]byte, 0, 64+len(c.Objects)*48)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint16(b, Format)
	b = append(b, c.Scope[:]...)
	b = binary.AppendUvarint(b, uint64(len(c.Streams)))
	for _, s := range c.Streams {
		b = append(b, s.Kind)
		b = appendString(b, s.Namespace)
		b = appendString(b, s.ResourceVersion)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Objects)))
	for _, o := range c.Objects {
		b = append(b, o.Key[:]...)
		var flags byte
		if o.Dead {
			flags |= flagDead
		}
		if o.Void {
			flags |= flagVoid
		}
		if o.UID != "" {
			flags |= flagUID
		}
		if o.Pending {
			flags |= flagPending
		}
		b = append(b, flags)
		if o.UID != "" {
			b = appendString(b, o.UID)
		}
		b = append(b, o.Kind)
		b = appendString(b, o.Name)
		b = binary.AppendUvarint(b, o.Version)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// castagnoli is CRC-32C's table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// Decode reads a checkpoint Encode wrote. It fails with ErrCorrupt or ErrFormat, never panics, and
// allocates no more than the input's size allows.
func Decode(data []byte) (*Checkpoint, error) {
	if len(data) < len(magic)+2+32+4 || !bytes.Equal(data[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: not a watchlist checkpoint", ErrCorrupt)
	}
	if f := binary.LittleEndian.Uint16(data[len(magic):]); f != Format {
		return nil, fmt.Errorf("%w: format %d, this reader reads %d", ErrFormat, f, Format)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (changed or cut short)", ErrCorrupt)
	}
	r := &decoder{b: body[len(magic)+2:]}
	c := &Checkpoint{}
	copy(c.Scope[:], r.bytes(32))
	c.Streams = make([]Stream, r.count(3))
	for i := range c.Streams {
		c.Streams[i] = Stream{Kind: r.byte(), Namespace: r.string(), ResourceVersion: r.string()}
	}
	c.Objects = make([]Object, r.count(20))
	for i := range c.Objects {
		o := &c.Objects[i]
		copy(o.Key[:], r.bytes(16))
		flags := r.byte()
		o.Dead, o.Void, o.Pending = flags&flagDead != 0, flags&flagVoid != 0, flags&flagPending != 0
		if flags&flagUID != 0 {
			o.UID = r.string()
		}
		o.Kind, o.Name, o.Version = r.byte(), r.string(), r.uvarint()
	}
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, r.err)
	case len(r.b) != 0:
		return nil, fmt.Errorf("%w: %d bytes after the objects", ErrCorrupt, len(r.b))
	}
	return c, nil
}

// decoder reads the body; after the first error every read returns zero values and err says why.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("cut short reading %s", what)
	}
	d.b = nil
}

func (d *decoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail("bytes")
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte { return d.bytes(1)[0] }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("a number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least min bytes each, and refuses one the rest cannot hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail("a count larger than the rest")
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("a string")
		return ""
	}
	return string(d.bytes(int(n)))
}
