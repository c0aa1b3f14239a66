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
#   "F <id> <message>"       not started: its log could not be opened, or fork failed
# Before the fork the launcher opens the log (appending) and the cgroup.procs files and sets the task's
# environment; the child then only sets its process group, puts /dev/null, the log and the log on 0, 1 and
# 2, writes its pid to each cgroup.procs file (exit 125 if it cannot), enters its directory (126) and execs
# (127), each failure with a line in the log. This
# keeps the child's copy-on-write faults few: 0.82 ms of CPU per `true` task against 1.5 ms when the child
# did it all. End of stdin (the agent is gone): exit at once and
# leave the tasks running, as a crashed agent would; the restarted agent kills them from its journal.
use strict;
use warnings;
use POSIX ();

$| = 1;
# What the launcher inherited past stderr (a service manager's or a shell's descriptors) is closed, so
# tasks do not inherit it; it needs only its stdin and stdout.
if (opendir(my $fds, '/proc/self/fd')) {
    my @inherited = grep { /^\d+$/ && $_ > 2 && $_ != fileno($fds) } readdir($fds);
    closedir($fds);
    POSIX::close($_) for @inherited;
}
# Perl opens files close-on-exec (past $^F): the tasks inherit only what is dup'ed onto 0, 1 and 2.
open(my $devnull_fh, '<', '/dev/null') or die "cannot open /dev/null: $!";
my $devnull = fileno($devnull_fh);
my %ids;    # pid => request id, for the tasks not reaped yet
# A handler (not the default, which ignores the signal) so that a child's exit interrupts select() below.
$SIG{CHLD} = sub { };
$SIG{PIPE} = 'IGNORE';

sub reap {
    while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
        my $id = delete $ids{$pid};
        print "X $id $pid $?\n" if defined $id;
    }
}

sub fail_child {
    my ($code, $message) = @_;
    print STDERR "qy-launcher: $message\n";
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
    # Everything that can be done before the fork is: the child then runs as few Perl operations as
    # possible before its exec, and every page it writes meanwhile is a copy-on-write fault.
    my ($log_fh, @procs_fh, $procs_err);
    if (!open($log_fh, '>>', $log)) {
        print "F $id could not open its log $log: $!\n";
        return;
    }
    for my $file (@procs) {
        my $fh;
        if (!open($fh, '>', $file)) { $procs_err //= "could not join the cgroup $file: $!"; next }
        push @procs_fh, $fh;
    }
    local %ENV = map { split /=/, $_, 2 } @env;
    my $pid = fork;
    if (!defined $pid) {
        print "F $id could not fork: $!\n";
        return;
    }
    if ($pid == 0) {
        $SIG{CHLD} = 'DEFAULT';
        $SIG{PIPE} = 'DEFAULT';
        setpgrp(0, 0);
        POSIX::dup2(fileno($log_fh), 1) or POSIX::_exit(126);
        POSIX::dup2(1, 2) or POSIX::_exit(126);
        POSIX::dup2($devnull, 0) or POSIX::_exit(126);
        fail_child(125, $procs_err) if defined $procs_err;
        for my $fh (@procs_fh) { syswrite($fh, "$$\n") or fail_child(125, "could not join a cgroup: $!") }
        if ($cwd ne '') { chdir($cwd) or fail_child(126, "could not enter $cwd: $!") }
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
