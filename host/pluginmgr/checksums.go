package pluginmgr

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// checksums holds the allowed SHA-256 of each plugin file, read from a
// file in sha256sum's format ("<hex>  <file name>", "*" before binary
// names allowed). Hashes of plugin files are cached by size and time.
type checksums struct {
	path string

	mu    sync.Mutex
	cache map[string]fileHash
}

type fileHash struct {
	size    int64
	modTime time.Time
	sum     []byte
}

// load reads the allowed hashes by file name.
func (c *checksums) load() (map[string][]byte, error) {
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, fmt.Errorf("read checksums file: %w", err)
	}
	out := map[string][]byte{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		raw, err := hex.DecodeString(sum)
		if !ok || err != nil || len(raw) != sha256.Size || name == "" {
			return nil, fmt.Errorf("checksums file %s line %d: want \"<sha256 hex>  <file name>\"", c.path, n)
		}
		out[filepath.Base(name)] = raw
	}
	return out, nil
}

// sum returns the SHA-256 of a candidate's file.
func (c *checksums) sum(cand Candidate) ([]byte, error) {
	c.mu.Lock()
	cached, ok := c.cache[cand.Path]
	c.mu.Unlock()
	if ok && cached.size == cand.Size && cached.modTime.Equal(cand.ModTime) {
		return cached.sum, nil
	}
	f, err := os.Open(cand.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	sum := h.Sum(nil)
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]fileHash{}
	}
	c.cache[cand.Path] = fileHash{size: cand.Size, modTime: cand.ModTime, sum: sum}
	c.mu.Unlock()
	return sum, nil
}

// verify splits candidates into those whose hash is listed and those
// refused, with the reason.
func (c *checksums) verify(found []Candidate) (ok []Candidate, refused []Skipped) {
	allowed, err := c.load()
	for _, cand := range found {
		file := filepath.Base(cand.Path)
		if err != nil {
			refused = append(refused, Skipped{file, err.Error()})
			continue
		}
		want, listed := allowed[file]
		if !listed {
			refused = append(refused, Skipped{file, "not listed in the checksums file " + c.path})
			continue
		}
		got, err := c.sum(cand)
		switch {
		case err != nil:
			refused = append(refused, Skipped{file, "cannot hash: " + err.Error()})
		case !bytes.Equal(got, want):
			refused = append(refused, Skipped{file, fmt.Sprintf("sha256 %x does not match the checksums file", got)})
		default:
			cand.sum = want
			ok = append(ok, cand)
		}
	}
	return ok, refused
}
