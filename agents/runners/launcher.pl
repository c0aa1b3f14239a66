#!/usr/bin/perl
# The agent's task launcher: a small long-lived process that forks and execs tasks for the agent, so the
# fork copies the page tables of a few-MB Perl process rather than those of a 100 MB Node.js process (see
# launcher.ts). Perl because perl-base is Essential on Debian: always there, nothing to build.
#
# Requests on stdin, one frame each: "<length>\n" then <length> bytes of NUL-separated fields:
#   id, cwd (empty: inherit), log path, n, n cgroup.procs files, argc, argv..., envc, NAME=value...
# Answers on stdout, a line each:
#   "P <id> <pid>"           forked; the task leads its own process group (pgid = pid)
#   "X <id> <pid> <status>"  reaped; status as wait(2) gives it
#   "F <id> <message>"       could not fork
# In the child, before exec: its own process group, stdin from /dev/null, stdout and stderr appended to the log,
# the pid written to each cgroup.procs file (exit 125 if that fails, 126 for the log or cwd, 127 for exec,
# each with a line in the log when it can be written). End of stdin (the agent is gone): exit at once and
# leave the tasks running, as a crashed agent would; the restarted agent kills them from its journal.
use strict;
use warnings;
use POSIX ();

$| = 1;
my %ids;    # pid => request id, for the tasks not reaped yet
my $chld = 0;
$SIG{CHLD} = sub { $chld = 1 };
$SIG{PIPE} = 'IGNORE';

sub reap {
    $chld = 0;
    while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
        my $id = delete $ids{$pid};
        print "X $id $pid $?\n" if defined $id;
    }
}

sub fail_child {
    my ($code, $message) = @_;
    print STDERR "qy-launcher: $message\n" if defined $message;
    POSIX::_exit($code);
}

sub launch {
    my @f = split /\0/, $_[0], -1;
    my $id = shift @f;
    my $cwd = shift @f;
    my $log = shift @f;
    my @procs = splice @f, 0, shift @f;
    my @argv = splice @f, 0, shift @f;
    my @env = splice @f, 0, shift @f;
    my $pid = fork;
    if (!defined $pid) {
        print "F $id could not fork: $!\n";
        return;
    }
    if ($pid == 0) {
        $SIG{CHLD} = 'DEFAULT';
        $SIG{PIPE} = 'DEFAULT';
        setpgrp(0, 0);
        open(STDIN, '<', '/dev/null') or POSIX::_exit(126);
        open(STDOUT, '>>', $log) or POSIX::_exit(126);
        open(STDERR, '>&', \*STDOUT) or POSIX::_exit(126);
        for my $file (@procs) {
            open(my $fh, '>', $file) or fail_child(125, "could not join the cgroup $file: $!");
            print $fh "$$\n";
            close($fh) or fail_child(125, "could not join the cgroup $file: $!");
        }
        if ($cwd ne '') { chdir($cwd) or fail_child(126, "could not enter $cwd: $!") }
        %ENV = ();
        for my $kv (@env) {
            my ($k, $v) = split /=/, $kv, 2;
            $ENV{$k} = $v;
        }
        { no warnings 'exec'; exec { $argv[0] } @argv; }
        fail_child(127, "could not start $argv[0]: $!");
    }
    # Both sides set the process group (as shells do), so it exists before the agent hears of the pid and
    # may signal the group.
    setpgrp($pid, $pid);
    $ids{$pid} = $id;
    print "P $id $pid\n";
}

my $buf = '';
while (1) {
    reap();
    my $rin = '';
    vec($rin, fileno(STDIN), 1) = 1;
    # A SIGCHLD between reap() and select() would wait for the next request: with tasks under way, look
    # again after a quarter of a second at the latest.
    my $n = select(my $rout = $rin, undef, undef, %ids ? 0.25 : undef);
    next if $n <= 0;
    my $r = sysread(STDIN, $buf, 65536, length $buf);
    if (!defined $r) {
        next if $!{EINTR} || $!{EAGAIN};
        exit 1;
    }
    exit 0 if $r == 0;
    while ($buf =~ /^(\d+)\n/) {
        my $len = $1;
        my $start = length($len) + 1;
        last if length($buf) < $start + $len;
        my $frame = substr($buf, $start, $len);
        $buf = substr($buf, $start + $len);
        launch($frame);
    }
}
