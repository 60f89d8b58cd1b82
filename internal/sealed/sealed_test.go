package sealed

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	kek := testKey(t)
	for _, tc := range []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext", nil, []byte("vault/secret/1")},
		{"nil aad", []byte("hello"), nil},
		{"typical", []byte("refresh-token-value"), []byte("vault/secret/abc")},
		{"large", bytes.Repeat([]byte{0xa5}, 1<<16), []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Seal(kek, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) != len(tc.plaintext)+overhead {
				t.Errorf("sealed length = %d, want %d", len(s), len(tc.plaintext)+overhead)
			}
			if s[0] != 1 {
				t.Errorf("version byte = %d, want 1", s[0])
			}
			if len(tc.plaintext) >= 8 && bytes.Contains(s, tc.plaintext[:8]) {
				t.Error("sealed output contains plaintext")
			}
			got, err := Open(kek, s, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %q, want %q", got, tc.plaintext)
			}
		})
	}
}

func TestFreshNonce(t *testing.T) {
	kek := testKey(t)
	a, _ := Seal(kek, []byte("same"), []byte("aad"))
	b, _ := Seal(kek, []byte("same"), []byte("aad"))
	if bytes.Equal(a[1:13], b[1:13]) {
		t.Fatal("two seals used the same nonce")
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same value are identical")
	}
}

func TestTamper(t *testing.T) {
	kek := testKey(t)
	aad := []byte("vault/secret/42")
	s, err := Seal(kek, []byte("the secret value"), aad)
	if err != nil {
		t.Fatal(err)
	}
	region := func(i int) string {
		switch {
		case i == 0:
			return "version"
		case i < 13:
			return "nonce"
		case i < len(s)-16:
			return "ciphertext"
		default:
			return "tag"
		}
	}
	seen := map[string]bool{}
	for i := range s {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(s)
			bad[i] ^= mask
			if _, err := Open(kek, bad, aad); !errors.Is(err, ErrSealed) {
				t.Errorf("flip byte %d (%s) with %#x: err = %v, want ErrSealed", i, region(i), mask, err)
			}
		}
		seen[region(i)] = true
	}
	for _, r := range []string{"version", "nonce", "ciphertext", "tag"} {
		if !seen[r] {
			t.Errorf("region %s not exercised", r)
		}
	}
	// Appending or truncating is tampering too.
	if _, err := Open(kek, append(bytes.Clone(s), 0), aad); !errors.Is(err, ErrSealed) {
		t.Errorf("appended byte: err = %v, want ErrSealed", err)
	}
	if _, err := Open(kek, s[:len(s)-1], aad); !errors.Is(err, ErrSealed) {
		t.Errorf("truncated: err = %v, want ErrSealed", err)
	}
	// The untouched value still opens, so the failures above are due to tampering.
	if _, err := Open(kek, s, aad); err != nil {
		t.Fatalf("untampered value does not open: %v", err)
	}
}

func TestWrongAADAndKey(t *testing.T) {
	kek := testKey(t)
	s, err := Seal(kek, []byte("v"), []byte("vault/secret/1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, aad := range [][]byte{nil, []byte(""), []byte("vault/secret/2"), []byte("vault/secret/1 ")} {
		if _, err := Open(kek, s, aad); !errors.Is(err, ErrSealed) {
			t.Errorf("aad %q: err = %v, want ErrSealed", aad, err)
		}
	}
	if _, err := Open(testKey(t), s, []byte("vault/secret/1")); !errors.Is(err, ErrSealed) {
		t.Errorf("wrong key: err = %v, want ErrSealed", err)
	}
}

func TestShortInput(t *testing.T) {
	kek := testKey(t)
	s, _ := Seal(kek, nil, nil)
	for n := 0; n <= len(s); n++ {
		_, err := Open(kek, s[:n], nil)
		if n < len(s) && !errors.Is(err, ErrSealed) {
			t.Errorf("len %d: err = %v, want ErrSealed", n, err)
		}
		if n == len(s) && err != nil {
			t.Errorf("full empty-plaintext value: %v", err)
		}
	}
	if _, err := Open(kek, nil, nil); !errors.Is(err, ErrSealed) {
		t.Errorf("nil input: err = %v, want ErrSealed", err)
	}
}

func TestBadKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		k := make([]byte, n)
		if _, err := Seal(k, []byte("x"), nil); err == nil {
			t.Errorf("Seal with %d-byte key succeeded", n)
		}
		_, err := Open(k, make([]byte, 64), nil)
		if err == nil || errors.Is(err, ErrSealed) {
			t.Errorf("Open with %d-byte key: err = %v, want a key-size error", n, err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	kek := bytes.Repeat([]byte{7}, 32)
	valid, err := Seal(kek, []byte("fuzz seed"), []byte("aad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, []byte("aad"))
	f.Add(valid[:overhead], []byte("aad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("aad"))
	f.Add(append([]byte{2}, valid[1:]...), []byte("aad"))
	f.Fuzz(func(t *testing.T, in, aad []byte) {
		pt, err := Open(kek, in, aad)
		if err != nil {
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("Open error %v is not ErrSealed", err)
			}
			if pt != nil {
				t.Fatal("Open returned plaintext with an error")
			}
			return
		}
		// Only a genuine seal opens: the fuzzer cannot forge a tag, so a
		// success must be a seal of the seed under its aad. (Compare
		// contents, not bytes: each fuzz worker seals its own seed with a
		// fresh nonce.)
		if string(pt) != "fuzz seed" || string(aad) != "aad" {
			t.Fatalf("forged value opened: %x -> %q", in, pt)
		}
	})
}
