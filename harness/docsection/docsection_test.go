package docsection

import (
	"os"
	"path/filepath"
	"testing"
)

const begin, end = "<!-- x:begin -->", "<!-- x:end -->"

func TestReplace(t *testing.T) {
	doc := "# Doc\n\n" + begin + "\nold table\n" + end + "\n\ntail\n"
	got, err := Replace(doc, begin, end, "new table\n")
	if want := "# Doc\n\n" + begin + "\nnew table\n" + end + "\n\ntail\n"; err != nil || got != want {
		t.Errorf("Replace = %q, %v; want %q", got, err, want)
	}
	if _, err := Replace("# Doc\n", begin, end, "x"); err == nil {
		t.Error("Replace of a document without the markers: no error")
	}
	if _, err := Replace(end+begin, begin, end, "x"); err == nil {
		t.Error("Replace with the markers out of order: no error")
	}
}

func TestRewriteChecksOrWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	old := begin + "\nold\n" + end + "\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := Rewrite(path, begin, end, "new\n", false); err != nil || !changed {
		t.Errorf("check of a stale section = %v, %v; want true, nil", changed, err)
	}
	if data, _ := os.ReadFile(path); string(data) != old {
		t.Errorf("a check wrote the file: %q", data)
	}
	if changed, err := Rewrite(path, begin, end, "new\n", true); err != nil || !changed {
		t.Errorf("write = %v, %v; want true, nil", changed, err)
	}
	if changed, err := Rewrite(path, begin, end, "new\n", false); err != nil || changed {
		t.Errorf("check of a current section = %v, %v; want false, nil", changed, err)
	}
}
