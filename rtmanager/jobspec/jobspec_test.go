package jobspec

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func validStart() map[string]string {
	return map[string]string{
		"game_id":         "game-1",
		"image_ref":       "127.0.0.1:5000/galaxy/game:1.0",
		"requested_at_ms": "1700000000000",
	}
}

func TestDecodeStartValid(t *testing.T) {
	v := validStart()
	v["config_json"] = `{"env":{"A":"1"},"cmd":["serve","-v"],"labels":{"team":"x"},"memory_mb":256,"cpus":0.5,"port":9000,"health_path":"/ready?x=1"}`
	job, err := DecodeStart("1-0", v)
	if err != nil {
		t.Fatalf("DecodeStart: %v", err)
	}
	if job.JobID != "1-0" {
		t.Errorf("job id defaults to the entry id, got %q", job.JobID)
	}
	if got := job.ImageName(); got != "127.0.0.1:5000/galaxy/game:1.0" {
		t.Errorf("ImageName = %q", got)
	}
	c := job.Config
	if c.Env["A"] != "1" || len(c.Cmd) != 2 || c.Labels["team"] != "x" || c.MemoryMB != 256 || c.CPUs != 0.5 || c.Port != 9000 || c.HealthPath != "/ready?x=1" {
		t.Errorf("config = %+v", c)
	}
}

func TestDecodeStartDefaults(t *testing.T) {
	v := validStart()
	v["image_ref"] = "galaxy/integration-missing:0.0.0"
	v["job_id"] = "job-7"
	job, err := DecodeStart("1-0", v)
	if err != nil {
		t.Fatalf("DecodeStart: %v", err)
	}
	if job.JobID != "job-7" || job.Config.Port != DefaultPort || job.Config.HealthPath != DefaultHealthPath {
		t.Errorf("job = %+v", job)
	}
	if got := job.ImageName(); got != "galaxy/integration-missing:0.0.0" {
		t.Errorf("ImageName = %q", got)
	}
	v["image_ref"] = "busybox"
	job, _ = DecodeStart("1-0", v)
	if got := job.ImageName(); got != "busybox:latest" {
		t.Errorf("ImageName of an untagged ref = %q", got)
	}
}

// TestDecodeStartInvalid is the table of start_config_invalid cases: each
// must fail and the message must name the offending field.
func TestDecodeStartInvalid(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(map[string]string)
		field  string
	}{
		{"missing game_id", func(v map[string]string) { delete(v, "game_id") }, "game_id"},
		{"game_id with slash", func(v map[string]string) { v["game_id"] = "a/b" }, "game_id"},
		{"game_id starting with dash", func(v map[string]string) { v["game_id"] = "-a" }, "game_id"},
		{"game_id too long", func(v map[string]string) { v["game_id"] = strings.Repeat("a", 129) }, "game_id"},
		{"missing image_ref", func(v map[string]string) { delete(v, "image_ref") }, "image_ref"},
		{"blank image_ref", func(v map[string]string) { v["image_ref"] = "  " }, "image_ref"},
		{"upper-case image_ref", func(v map[string]string) { v["image_ref"] = "Galaxy/Game:1" }, "image_ref"},
		{"image_ref with bad tag", func(v map[string]string) { v["image_ref"] = "galaxy/game:bad tag" }, "image_ref"},
		{"missing requested_at_ms", func(v map[string]string) { delete(v, "requested_at_ms") }, "requested_at_ms"},
		{"requested_at_ms not a number", func(v map[string]string) { v["requested_at_ms"] = "yesterday" }, "requested_at_ms"},
		{"requested_at_ms fractional", func(v map[string]string) { v["requested_at_ms"] = "1.5" }, "requested_at_ms"},
		{"job_id too long", func(v map[string]string) { v["job_id"] = strings.Repeat("j", 300) }, "job_id"},
		{"config_json not JSON", func(v map[string]string) { v["config_json"] = `{` }, "config_json"},
		{"config_json an array", func(v map[string]string) { v["config_json"] = `[]` }, "config_json"},
		{"config_json null", func(v map[string]string) { v["config_json"] = `null` }, "config_json"},
		{"config_json trailing data", func(v map[string]string) { v["config_json"] = `{} {}` }, "config_json"},
		{"unknown key", func(v map[string]string) { v["config_json"] = `{"privileged":true}` }, "config_json.privileged"},
		{"env not an object", func(v map[string]string) { v["config_json"] = `{"env":["A=1"]}` }, "config_json.env"},
		{"env value not a string", func(v map[string]string) { v["config_json"] = `{"env":{"A":1}}` }, "config_json.env.A"},
		{"env value null", func(v map[string]string) { v["config_json"] = `{"env":{"A":null}}` }, "config_json.env.A"},
		{"env key with =", func(v map[string]string) { v["config_json"] = `{"env":{"A=B":"1"}}` }, "config_json.env"},
		{"env value with NUL", func(v map[string]string) { v["config_json"] = `{"env":{"A":"x\u0000y"}}` }, "config_json.env.A"},
		{"cmd item with NUL", func(v map[string]string) { v["config_json"] = `{"cmd":["serve","a\u0000"]}` }, "config_json.cmd[1]"},
		{"label value with NUL", func(v map[string]string) { v["config_json"] = `{"labels":{"a":"\u0000"}}` }, "config_json.labels.a"},
		{"label key with NUL", func(v map[string]string) { v["config_json"] = `{"labels":{"a\u0000":"x"}}` }, "config_json.labels"},
		{"cmd not an array", func(v map[string]string) { v["config_json"] = `{"cmd":"serve"}` }, "config_json.cmd"},
		{"cmd item not a string", func(v map[string]string) { v["config_json"] = `{"cmd":["serve",1]}` }, "config_json.cmd[1]"},
		{"labels not an object", func(v map[string]string) { v["config_json"] = `{"labels":"x"}` }, "config_json.labels"},
		{"labels value not a string", func(v map[string]string) { v["config_json"] = `{"labels":{"a":true}}` }, "config_json.labels.a"},
		{"reserved label", func(v map[string]string) { v["config_json"] = `{"labels":{"galaxy.rtmanager.game_id":"x"}}` }, "config_json.labels"},
		{"memory_mb zero", func(v map[string]string) { v["config_json"] = `{"memory_mb":0}` }, "config_json.memory_mb"},
		{"memory_mb negative", func(v map[string]string) { v["config_json"] = `{"memory_mb":-5}` }, "config_json.memory_mb"},
		{"memory_mb fractional", func(v map[string]string) { v["config_json"] = `{"memory_mb":1.5}` }, "config_json.memory_mb"},
		{"memory_mb string", func(v map[string]string) { v["config_json"] = `{"memory_mb":"512"}` }, "config_json.memory_mb"},
		{"memory_mb huge", func(v map[string]string) { v["config_json"] = `{"memory_mb":99999999999999999}` }, "config_json.memory_mb"},
		{"cpus zero", func(v map[string]string) { v["config_json"] = `{"cpus":0}` }, "config_json.cpus"},
		{"cpus string", func(v map[string]string) { v["config_json"] = `{"cpus":"1"}` }, "config_json.cpus"},
		{"port zero", func(v map[string]string) { v["config_json"] = `{"port":0}` }, "config_json.port"},
		{"port too big", func(v map[string]string) { v["config_json"] = `{"port":65536}` }, "config_json.port"},
		{"port fractional", func(v map[string]string) { v["config_json"] = `{"port":80.5}` }, "config_json.port"},
		{"health_path relative", func(v map[string]string) { v["config_json"] = `{"health_path":"healthz"}` }, "config_json.health_path"},
		{"health_path with space", func(v map[string]string) { v["config_json"] = `{"health_path":"/a b"}` }, "config_json.health_path"},
		{"health_path not a string", func(v map[string]string) { v["config_json"] = `{"health_path":1}` }, "config_json.health_path"},
		{"config_json too large", func(v map[string]string) {
			v["config_json"] = `{"env":{"A":"` + strings.Repeat("x", MaxConfigJSONBytes) + `"}}`
		}, "config_json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := validStart()
			tc.mutate(v)
			job, err := DecodeStart("5-0", v)
			inv, ok := AsInvalid(err)
			if !ok {
				t.Fatalf("want an InvalidError, got %v", err)
			}
			found := false
			for _, f := range inv.Fields {
				if f.Field == tc.field {
					found = true
				}
			}
			if !found {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field+":") {
				t.Fatalf("message %q does not start a clause with %s", err, tc.field)
			}
			if job.JobID == "" {
				t.Fatalf("an invalid job still needs a job id")
			}
		})
	}
}

func TestDecodeStartReportsEveryField(t *testing.T) {
	_, err := DecodeStart("1-0", map[string]string{"config_json": `{"port":0,"cpus":-1}`})
	inv, ok := AsInvalid(err)
	if !ok {
		t.Fatalf("want InvalidError, got %v", err)
	}
	var names []string
	for _, f := range inv.Fields {
		names = append(names, f.Field)
	}
	want := "game_id,image_ref,requested_at_ms,config_json.cpus,config_json.port"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("fields = %s, want %s", got, want)
	}
}

func TestDecodeStop(t *testing.T) {
	job, err := DecodeStop("9-1", map[string]string{"game_id": "g", "requested_at_ms": "1", "reason": "finished"})
	if err != nil || job.JobID != "9-1" || job.Reason != "finished" {
		t.Fatalf("job = %+v, err = %v", job, err)
	}
	_, err = DecodeStop("9-1", map[string]string{"game_id": "a b"})
	inv, ok := AsInvalid(err)
	if !ok || len(inv.Fields) != 2 {
		t.Fatalf("want game_id and requested_at_ms errors, got %v", err)
	}
}

// FuzzDecodeStart feeds arbitrary entries to the decoder: it must never
// panic, must always return a job ID, and an accepted job must satisfy every
// rule the runner relies on.
func FuzzDecodeStart(f *testing.F) {
	f.Add("game-1", "galaxy/game:1", "1700000000000", "", "")
	f.Add("game-1", "127.0.0.1:5000/game@sha256:0123456789012345678901234567890123456789012345678901234567890123", "1", "j", `{"env":{"A":"1"},"cmd":["a"],"labels":{"x":"y"},"memory_mb":64,"cpus":1.5,"port":8080,"health_path":"/healthz"}`)
	f.Add("", "", "", "", `{"port":1e3}`)
	f.Add("g", "UPPER", "-1", strings.Repeat("x", 300), `{"env":null}`)
	f.Add("g.g_g-g", "a", "9223372036854775807", "\x00", `{"memory_mb":9223372036854775807,"cpus":1e400}`)
	f.Add("g", "a:b", "1", "", `{"cmd":[],"labels":{},"env":{}}  `)
	f.Add("g", "a:b", "1", "", `{"a\u0000b":1,"env":{"K\u0001":"v"}}`)
	f.Fuzz(func(t *testing.T, gameID, imageRef, requestedAt, jobID, configJSON string) {
		values := map[string]string{
			"game_id": gameID, "image_ref": imageRef, "requested_at_ms": requestedAt,
			"job_id": jobID, "config_json": configJSON,
		}
		job, err := DecodeStart("1-0", values)
		if job.JobID == "" {
			t.Fatal("empty job id")
		}
		if err != nil {
			checkRejection(t, err)
			return
		}
		if !GameIDPattern.MatchString(job.GameID) || job.Image == nil || job.RequestedAtMS <= 0 {
			t.Fatalf("accepted an invalid job: %+v", job)
		}
		c := job.Config
		if c.Port < 1 || c.Port > 65535 || c.MemoryMB < 0 || c.CPUs < 0 || !strings.HasPrefix(c.HealthPath, "/") {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
		for k := range c.Labels {
			if strings.HasPrefix(k, ReservedLabelPrefix) {
				t.Fatalf("accepted a reserved label %q", k)
			}
		}
		for k := range c.Env {
			if k == "" || strings.Contains(k, "=") {
				t.Fatalf("accepted env key %q", k)
			}
		}
	})
}

// FuzzDecodeStop does the same for stop jobs: never a panic, always a job
// ID, and an accepted job names a valid game and a positive request time.
func FuzzDecodeStop(f *testing.F) {
	f.Add("game-1", "1700000000000", "", "finished")
	f.Add("a b", "-1", strings.Repeat("j", 300), "\xff")
	f.Add("", "9223372036854775808", "\x00", "")
	f.Fuzz(func(t *testing.T, gameID, requestedAt, jobID, reason string) {
		values := map[string]string{"game_id": gameID, "requested_at_ms": requestedAt, "job_id": jobID, "reason": reason}
		job, err := DecodeStop("1-0", values)
		if job.JobID == "" {
			t.Fatal("empty job id")
		}
		if err != nil {
			checkRejection(t, err)
			return
		}
		if !GameIDPattern.MatchString(job.GameID) || job.RequestedAtMS <= 0 {
			t.Fatalf("accepted an invalid stop job: %+v", job)
		}
	})
}

// checkRejection holds what the fuzz targets require of a refused job: an
// InvalidError whose message is valid UTF-8, fit for a result entry.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	if _, ok := AsInvalid(err); !ok {
		t.Fatalf("error is not an InvalidError: %v", err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("message became invalid UTF-8: %q", err)
	}
	if strings.ContainsFunc(err.Error(), func(r rune) bool { return !unicode.IsPrint(r) }) {
		t.Fatalf("message carries unprintable characters: %q", err)
	}
}

func TestRecordable(t *testing.T) {
	for in, want := range map[string]string{"game-1": "game-1", "g\xffame": "g\uFFFDame", "a\x00b": "a\uFFFDb", "": ""} {
		if got := Recordable(in); got != want {
			t.Errorf("Recordable(%q) = %q, want %q", in, got, want)
		}
	}
}
