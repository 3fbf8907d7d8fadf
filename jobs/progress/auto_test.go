package progress

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/captures/*.golden")

// autoCase is a line as a tool prints it. from says where the line comes
// from: "captured" (copied from a capture in testdata/captures, made on
// the development machine), "docs: ..." (written from the tool's
// documentation or from memory of its output, not captured), or
// "synthetic" (the generic forms the issue names).
type autoCase struct {
	name, from, line, want string
}

func TestProgressAuto(t *testing.T) {
	cases := []autoCase{
		// Generic forms.
		{"percent", "synthetic", "45%", `45 auto`},
		{"percent with space", "synthetic", "45.5 %", `45.5 auto`},
		{"percent in words", "synthetic", "Downloading foo.tar.gz 45%", `45 auto "Downloading foo.tar.gz 45%"`},
		{"hash bar", "synthetic", "[####    ] 45%", `45 auto`},
		{"last percentage wins", "synthetic", "file 1: 100%, total 45%", `45 auto "file 1: 100%, total 45%"`},
		{"colored", "synthetic", "\x1b[32m45%\x1b[0m", `45 auto`},
		{"redraw prefix", "synthetic", "\x1b[2K\x1b[1G 3%", `3 auto`},
		{"bracketed count", "synthetic", "[3/10]", `30 3/10 auto`},
		{"parenthesized count", "synthetic", "(3/10) linking", `30 3/10 auto "(3/10) linking"`},
		{"step count", "synthetic", "Step 3/10", `30 3/10 auto "Step 3/10"`},
		{"of count", "synthetic", "3 of 10", `30 3/10 auto`},
		{"of count in words", "synthetic", "Processing item 3 of 10", `30 3/10 auto "Processing item 3 of 10"`},
		{"epoch", "synthetic", "Epoch 3/10", `30 3/10 auto "Epoch 3/10"`},

		// curl (captured: testdata/captures/curl.txt, curl-bar.txt).
		{"curl meter", "captured", " 28 1953k   28  546k    0     0   694k      0  0:00:02 --:--:--  0:00:02  694k", `28 auto`},
		{"curl meter start", "captured", "  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0", `0 auto`},
		{"curl meter end", "captured", "100 1953k  100 1953k    0     0   659k      0  0:00:02  0:00:02 --:--:--  659k", `100 auto`},
		{"curl meter header", "captured", "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current", `none`},
		{"curl meter header 2", "captured", "                                 Dload  Upload   Total   Spent    Left  Speed", `none`},
		{"curl -#", "captured", "##############################                                            42.0%", `42 auto`},

		// wget (captured: testdata/captures/wget.txt, wget-dot.txt).
		{"wget bar", "captured", "/dev/null            32%[=====>              ] 633.00K   654KB/s               ", `32 auto "/dev/null 32% 633.00K 654KB/s"`},
		{"wget bar done", "captured", "/dev/null           100%[===================>]   1.91M   658KB/s    in 3.0s    ", `100 auto "/dev/null 100% 1.91M 658KB/s in 3.0s"`},
		{"wget dot", "captured", "   600K .......... .......... .......... .......... .......... 22%  248K 1s", `22 auto`},
		{"wget docs bar", "docs: wget manual, --progress=bar", "foo.iso        45%[=======>           ]   1,234K  1.2MB/s", `45 auto "foo.iso 45% 1,234K 1.2MB/s"`},

		// pip (captured: testdata/captures/pip.txt; rich draws with colors).
		{"pip", "captured", "\x1b[2K     \x1b[91m━━━━━━━━━━━━━━━━\x1b[0m\x1b[90m╺\x1b[0m\x1b[90m━━━━━━━━━━━━━━━━━━━━━━━\x1b[0m \x1b[32m0.8/2.0 MB\x1b[0m \x1b[31m685.6 kB/s\x1b[0m eta \x1b[36m0:00:02\x1b[0m", `40 800000/2000000 auto`},
		{"pip docs", "docs: the issue's example", "━━━━━━ 4.5/10.0 MB 1.2 MB/s eta 0:00:05", `45 4500000/10000000 auto`},
		{"pip old bar", "docs: pip 20 output, from memory", "     |████████▌                       | 2.6 MB 3.1 MB/s eta 0:00:01", `28.13 auto`},
		{"pip collecting", "captured", "Collecting foo==1.0", `none`},
		{"pip downloading", "captured", "  Downloading http://127.0.0.1:42219/foo-1.0-py3-none-any.whl (2.0 MB)", `none`},

		// cargo (captured: testdata/captures/cargo.txt).
		{"cargo building", "captured", "\x1b[1m\x1b[96m    Building\x1b[0m [=============>               ] 3/6: c1                          ", `50 3/6 auto "Building 3/6: c1"`},
		{"cargo docs", "docs: the issue's example", "    Building [=====>                       ] 45/120: serde, tokio", `37.5 45/120 auto "Building 45/120: serde, tokio"`},
		{"cargo compiling", "captured", "\x1b[1m\x1b[92m   Compiling\x1b[0m c1 v0.1.0 (/tmp/prog/cw/c1)", `none`},
		{"cargo finished", "captured", "\x1b[K\x1b[1m\x1b[92m    Finished\x1b[0m `dev` profile [unoptimized + debuginfo] target(s) in 8.94s", `none`},

		// rsync (rsync is not installed here).
		{"rsync progress", "docs: rsync(1) man page, --progress", "      782448  63%  110.64kB/s    0:00:04", `63 auto`},
		{"rsync progress done", "docs: rsync(1) man page, --progress", "     1238099 100%  146.38kB/s    0:00:08  (xfr#5, to-chk=169/396)", `100 auto`},
		{"rsync progress2", "docs: rsync(1) man page, --info=progress2", "    432,013,312  41%   41.20MB/s    0:00:09 (xfr#3, ir-chk=1012/1020)", `41 auto`},
		{"rsync file name", "docs: rsync(1) man page", "sending incremental file list", `none`},

		// docker (pulling needs the network).
		{"docker downloading", "docs: docker pull output", "a48641193673: Downloading [=====>                                             ]  3.146MB/29.54MB", `10.65 3146000/29540000 auto "a48641193673: Downloading 3.146MB/29.54MB"`},
		{"docker kB", "docs: docker pull output", "5e6ec7f28fb7: Downloading [>                                                  ]  527.8kB/50.2MB", `1.05 527800/50200000 auto "5e6ec7f28fb7: Downloading 527.8kB/50.2MB"`},
		{"docker extracting", "docs: docker pull output", "a48641193673: Extracting [==================================================>]  29.54MB/29.54MB", `100 29540000/29540000 auto "a48641193673: Extracting 29.54MB/29.54MB"`},
		{"docker pull complete", "docs: docker pull output", "a48641193673: Pull complete", `none`},
		{"docker buildkit step", "docs: docker buildx build --progress=plain", "#5 [2/4] RUN apt-get update", `50 2/4 auto "#5 [2/4] RUN apt-get update"`},
		{"docker buildkit sizes", "docs: docker buildx build --progress=plain", "#6 sha256:9c8f1a 9.44MB / 29.54MB 0.8s", `31.96 9440000/29540000 auto "#6 sha256:9c8f1a 9.44MB / 29.54MB 0.8s"`},
		{"docker classic build", "docs: docker build (legacy builder)", "Step 3/10 : RUN make", `30 3/10 auto "Step 3/10 : RUN make"`},

		// pv (not installed here).
		{"pv bar", "docs: pv(1) man page", " 512MiB 0:00:05 [ 102MiB/s] [=========>          ] 45% ETA 0:00:06", `45 auto`},

		// apt (downloading needs the network).
		{"apt download", "docs: apt-get install on a terminal", "45% [2 libfoo 1,234 kB/5,678 kB 21%]", `45 auto "45% [2 libfoo 1,234 kB/5,678 kB 21%]"`},
		{"apt working", "docs: apt-get install on a terminal", "0% [Working]", `0 auto "0% [Working]"`},
		{"apt reading", "docs: apt-get install on a terminal", "Reading package lists... 45%", `45 auto "Reading package lists... 45%"`},
		{"apt fancy", "docs: apt-get with Dpkg::Progress-Fancy", "Progress: [ 45%] [##########..............]", `45 auto "Progress: [ 45%]"`},
		{"apt get", "docs: apt-get install", "Get:1 http://deb.debian.org/debian bookworm/main amd64 curl amd64 7.88.1-10+deb12u5 [315 kB]", `none`},
		{"apt fetched", "docs: apt-get install", "Fetched 1,234 kB in 1s (1,234 kB/s)", `none`},

		// npm and yarn.
		{"npm 6 gauge", "docs: npm 6 on a terminal, from memory", "[##########........] / extract:lodash: verb lock using /root/.npm/_locks", `55.56 auto "/ extract:lodash: verb lock using /root/.npm/_locks"`},
		{"npm 8 gauge", "docs: npm 8 on a terminal, from memory", "⸨█████████░░░░░░░░░⸩ ⠧ reify:lodash: timing reifyNode:node_modules/lodash Completed in 12ms", `50 auto "reify:lodash: timing reifyNode:node_modules/lodash Completed in 12ms"`},
		{"npm 10 spinner", "docs: npm 10 on a terminal, from memory", "⠙", `none`},
		{"yarn step", "docs: yarn 1 install", "[2/4] Fetching packages...", `50 2/4 auto "[2/4] Fetching packages..."`},

		// Others.
		{"tqdm", "docs: tqdm README", " 45%|████▌     | 45/100 [00:01<00:01, 45.00it/s]", `45 auto`},
		{"gradle", "docs: gradle rich console", "<=====--------> 45% EXECUTING [12s]", `45 auto "45% EXECUTING [12s]"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Parser{}
			if got := progressString(p.Parse([]byte(tc.line))); got != tc.want {
				t.Errorf("Parse(%q) (%s)\n got %s\nwant %s", tc.line, tc.from, got, tc.want)
			}
		})
	}
}

// Lines that look like progress to a careless reader and must not be.
func TestProgressAutoNotProgress(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"above 100", "150%"},
		{"cpu", "cpu 250%"},
		{"negative", "change -5%"},
		{"signed", "+3%"},
		{"glued to a word", "x45%"},
		{"thousands", "1,234%"},
		{"printf verb", "printf 50%s"},
		{"url escape", "GET /a%2045"},
		{"date slashes", "2026/11/25"},
		{"us date", "11/25/2026"},
		{"bracketed date", "[2026/11/25] started"},
		{"us date in words", "released on 11/25/2026"},
		{"labelled date", "Step 11/25/2026"},
		{"labelled date iso", "build 2026/11/25"},
		{"path", "src/1/2.go"},
		{"path in parens", "(src/1/2.go)"},
		{"bracket path", "[1/2.go]"},
		{"url", "http://x/3/4"},
		{"url in words", "see https://example.com/3/4 for details"},
		{"version", "version 1.2.3"},
		{"version slash", "v2/3"},
		{"bare fraction", "3/4"},
		{"recipe", "1/2 cup of sugar"},
		{"zero ratio", "ratio 0/0"},
		{"bracketed zero", "[0/0]"},
		{"current above total", "[100/50]"},
		{"labelled above total", "Step 100/50"},
		{"of above total", "100 of 50"},
		{"of zero", "0 of 0"},
		{"time", "12:30:45"},
		{"ip", "10.0.0.1/24"},
		{"http version", "HTTP/1.1 200 OK"},
		{"load", "load average: 0.45, 0.50, 0.55"},
		{"bare number", "42"},
		{"exit code", "exit 0"},
		{"gtest separator", "[==========] 3 tests from 1 test suite ran. (0 ms total)"},
		{"gtest dashes", "[----------] 3 tests from Foo"},
		{"gtest run", "[ RUN      ] Foo.Bar"},
		{"gtest ok", "[       OK ] Foo.Bar (0 ms)"},
		{"short bar", "[##..]"},
		{"wget length", "Length: 2000000 (1.9M) [application/octet-stream]"},
		{"rate", "1.2 MB/s"},
		{"sizes above total", "45.6MB/12.3MB"},
		{"go test", "ok  \tgithub.com/jobrun/jobrun/jobs\t0.012s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Parser{}
			if pr, ok := p.Parse([]byte(tc.line)); ok {
				t.Errorf("Parse(%q) = %s, want none", tc.line, progressString(pr, ok))
			}
		})
	}
}

// pv -n prints a bare number per line; one bare number is data, a
// non-decreasing run of them is progress (the first of a run is not
// reported).
func TestProgressBareNumbers(t *testing.T) {
	p := &Parser{}
	for _, step := range []struct{ line, want string }{
		{"0", `none`}, // the first of a run
		{"12", `12 auto`},
		{"12", `12 auto`},
		{"", `none`}, // empty lines do not break a run
		{"  25 ", `25 auto`},
		{"hello", `none`},
		{"30", `none`}, // a new run
		{"31", `31 auto`},
		{"20", `none`}, // decreasing
		{"101", `none`},
		{"100", `none`}, // after an out-of-range number: a new run
		{"100", `100 auto`},
	} {
		if got := progressString(p.Parse([]byte(step.line))); got != step.want {
			t.Errorf("Parse(%q) = %s, want %s", step.line, got, step.want)
		}
	}
	e := &Parser{Mode: Explicit}
	for _, line := range []string{"10", "20", "30"} {
		if pr, ok := e.Parse([]byte(line)); ok {
			t.Errorf("explicit mode: Parse(%q) = %s, want none", line, progressString(pr, ok))
		}
	}
}

// TestProgressCaptures parses the real tool output in testdata/captures
// segment by segment, as the runner splits it, and compares the progress
// found with the .golden files (go test -run ProgressCaptures
// -update rewrites them; review the diff).
func TestProgressCaptures(t *testing.T) {
	files, err := filepath.Glob("testdata/captures/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("# ")) {
				t.Fatalf("%s: first line must say where the capture comes from", file)
			}
			data = data[bytes.IndexByte(data, '\n')+1:]
			var got strings.Builder
			auto, explicit := &Parser{}, &Parser{Mode: Explicit}
			for i, seg := range progressSegments(data) {
				pr, ok := auto.Parse(seg)
				if ok {
					fmt.Fprintf(&got, "%d: %s\n", i, progressString(pr, ok))
				}
				if pr, ok := explicit.Parse(seg); ok && pr.Source == SourceAuto {
					t.Errorf("explicit mode found auto progress in segment %d", i)
				}
			}
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("progress of %s:\n got:\n%s\nwant:\n%s", file, got.String(), want)
			}
		})
	}
}
