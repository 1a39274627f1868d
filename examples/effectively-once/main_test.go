package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/examples/internal/exampletest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) { exampletest.Run(t, run) }
