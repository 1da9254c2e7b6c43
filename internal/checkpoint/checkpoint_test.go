package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"
)

// randomCheckpoint returns a checkpoint with n objects, from rng.
func randomCheckpoint(rng *rand.Rand, n int) *Checkpoint {
	c := &Checkpoint{}
	for i := range c.Scope {
		c.Scope[i] = byte(rng.Uint32())
	}
	for i := range rng.IntN(5) {
		c.Streams = append(c.Streams, Stream{Kind: uint8(rng.IntN(256)), Namespace: fmt.Sprint("ns-", i), ResourceVersion: fmt.Sprint(rng.Uint64())})
	}
	for i := range n {
		o := Object{Kind: uint8(rng.IntN(256)), Name: fmt.Sprintf("ns-%d/pod-%d", rng.IntN(10), i), Version: rng.Uint64N(1 << 40),
			Dead: rng.IntN(5) == 0, Void: rng.IntN(20) == 0, Pending: rng.IntN(20) == 0}
		for j := range o.Key {
			o.Key[j] = byte(rng.Uint32())
		}
		if rng.IntN(10) == 0 {
			o.UID = fmt.Sprint("odd-uid-", i)
		}
		c.Objects = append(c.Objects, o)
	}
	return c
}

// TestRoundTrip: what Encode writes, Decode gives back, for random checkpoints (the seed is printed
// on failure).
func TestRoundTrip(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		c := randomCheckpoint(rng, rng.IntN(50))
		got, err := Decode(Encode(c))
		if err != nil {
			t.Fatalf("seed %d: Decode: %v", seed, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(c)) {
			t.Fatalf("seed %d: round trip differs:\n got %+v\nwant %+v", seed, got, c)
		}
	}
}

// normalize makes empty and nil slices equal.
func normalize(c *Checkpoint) Checkpoint {
	out := *c
	if len(out.Streams) == 0 {
		out.Streams = nil
	}
	if len(out.Objects) == 0 {
		out.Objects = nil
	}
	return out
}

// TestDamageIsDetected: every truncation, and every change of one byte, makes Decode fail with
// ErrCorrupt or ErrFormat, never panic.
func TestDamageIsDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	good := Encode(randomCheckpoint(rng, 20))
	for n := range len(good) {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d of %d bytes: Decode = %v, want ErrCorrupt", n, len(good), err)
		}
	}
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= byte(1 + rng.IntN(255))
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d changed: Decode = %v, want ErrCorrupt or ErrFormat", i, err)
		}
	}
}

// TestForeignInput: another format version, other files, and a checksummed body whose counts lie.
func TestForeignInput(t *testing.T) {
	good := Encode(&Checkpoint{})
	other := append([]byte(nil), good...)
	binary.LittleEndian.PutUint16(other[4:], Format+1)
	if _, err := Decode(other); !errors.Is(err, ErrFormat) {
		t.Errorf("format %d: Decode = %v, want ErrFormat", Format+1, err)
	}
	for _, data := range [][]byte{nil, []byte("{}"), []byte("WLCP"), make([]byte, 100)} {
		if _, err := Decode(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%q) = %v, want ErrCorrupt", data, err)
		}
	}
	// A count of 2^62 objects under a valid checksum must not allocate them.
	body := append([]byte(nil), good[:len(good)-4-1]...) // drop the object count (0) and the checksum
	body = binary.AppendUvarint(body, 1<<62)
	lying := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	if _, err := Decode(lying); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a lying count: Decode = %v, want ErrCorrupt", err)
	}
}

// TestSize: an object costs its name and about 22 bytes; the filter keeps about 90 in memory.
func TestSize(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	c := randomCheckpoint(rng, 0)
	nameBytes := 0
	for i := range 10000 {
		o := Object{Kind: 2, Name: fmt.Sprintf("namespace-%d/pod-%d", i%50, i), Version: 1_000_000 + uint64(i)}
		binary.LittleEndian.PutUint64(o.Key[:], rng.Uint64())
		nameBytes += len(o.Name)
		c.Objects = append(c.Objects, o)
	}
	perObject := float64(len(Encode(c))-nameBytes) / 10000
	t.Logf("%.1f bytes per object beyond its name", perObject)
	if perObject > 26 {
		t.Errorf("%.1f bytes per object beyond its name, want at most 26", perObject)
	}
}
