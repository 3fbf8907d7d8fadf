//go:build race

package api_test

// raceEnabled: the race detector slows the tests' own reading and
// matching several times; big fixtures shrink under it.
const raceEnabled = true
