//go:build brokers

package main

func init() { withAMQP = true }
