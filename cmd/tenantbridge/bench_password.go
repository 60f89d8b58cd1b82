package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/bench"
)

func (c *cli) benchPasswordGuessCmd() *cobra.Command {
	var opts bench.PasswordGuessOptions
	cmd := &cobra.Command{
		Use:   "password-guess [--concurrency N] [--users N] [--duration D] [--keep]",
		Short: "Guess passwords in parallel through the password grant and report the server's peak memory and the token latency meanwhile",
		Long: `password-guess measures what a password-guessing burst costs the running
server (the server of --data): every wrong password is an argon2id hash of
19 MiB.

It creates a throwaway tenant (bench<digits>) through the operator API and,
as its administrator through Graph, the bench application with a client
secret and --users users. Then, for --duration, --concurrency goroutines send
password grants (grant_type=password, the application's secret) with wrong
passwords, round-robin over the users and never the same password twice (so
each user's first ten guesses are hashed before smart lockout locks it and
answers AADSTS50053 without hashing); meanwhile one goroutine sends
client-credentials requests back to back, and the server's resident memory is
sampled every 100 ms (GET /_operator/v1/stats).

It reports the server's peak resident memory over the window, the guesses by
answer, and the client-credentials requests' rate and latency (p50, p90, p99,
maximum). The tenant is deleted at the end (unless --keep), also after
Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Concurrency < 1 || opts.Users < 1 {
				return errors.New("--concurrency and --users must be at least 1")
			}
			if opts.Duration <= 0 {
				return errors.New("--duration must be positive")
			}
			return runBench(c, cmd, &opts.Server, &opts.Log, func(ctx context.Context) (bench.PasswordGuessReport, error) {
				return bench.RunPasswordGuess(ctx, opts)
			}, func(r bench.PasswordGuessReport) bool { return r.Tenant != "" }, bench.PrintPasswordGuess)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Concurrency, "concurrency", "c", bench.DefaultGuessConcurrency, "goroutines sending wrong passwords back to back")
	f.IntVar(&opts.Users, "users", bench.DefaultGuessUsers, "users the guesses are spread over")
	f.DurationVarP(&opts.Duration, "duration", "d", bench.DefaultDuration, "measured window")
	f.BoolVar(&opts.Keep, "keep", false, "keep the bench tenant instead of deleting it")
	return cmd
}
