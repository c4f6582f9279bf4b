package Cocaine::Worker;
# The worker: loads the app, connects to the node and serves jobs until the node lets it go.
#
# Jobs run on the process's only thread. While a streaming handler waits on the node (reading
# its request, `$response->sleep`, `$response->cancelled`, `$response->write`) the worker
# keeps reading the channel: heartbeats go out, cancels and terminates are heard, and plain
# jobs that are ready run in the meantime; other streaming jobs wait their turn.

use strict;
use warnings;
use B ();
use Errno qw(EINTR EAGAIN);
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Time::HiRes ();

use Cocaine ();
use Cocaine::Worker::Job;
use Cocaine::Worker::Protocol qw(HANDSHAKE HEARTBEAT INVOKE CHUNK CHOKE ERROR CANCEL TERMINATE
    PROTOCOL_VERSION DEFAULT_MAX_MESSAGE frame text_frame parse);

use constant { READ_SIZE => 256 * 1024, FLUSH_AT => 64 * 1024, BAD_MESSAGE_LOG_LIMIT => 10 };

my $PREFIX = 'cocaine worker';

sub log_line {
    my ($message) = @_;
    print STDERR "$PREFIX: $message\n";
}

# -- command line, environment, app -------------------------------------------------------

sub usage {
    my ($problem) = @_;
    print STDERR "cocaine-worker-perl: $problem\n"
        . "usage: cocaine-worker-perl [--socket PATH] [--app NAME] CODE_PATH\n";
    exit 2;
}

sub env_number {
    my ($name, $default) = @_;
    my $raw = $ENV{$name};
    return $default if !defined $raw || $raw eq '';
    return 0 + $raw if $raw =~ /\A[1-9][0-9]{0,15}\z/;
    log_line("$name='$raw' is not a positive integer; using $default");
    return $default;
}

# Runs the worker for @ARGV; returns the exit code.
sub main {
    my (@argv) = @_;
    my %args = (socket => $ENV{COCAINE_SOCKET}, app => $ENV{COCAINE_APP});
    while (@argv) {
        my $arg = shift @argv;
        if ($arg eq '--socket' || $arg eq '--app') {
            usage("$arg needs a value") unless @argv;
            $args{ substr $arg, 2 } = shift @argv;
        } elsif ($arg =~ /\A--/) {
            usage("unknown option $arg");
        } elsif (!defined $args{code}) {
            $args{code} = $arg;
        } else {
            usage("unexpected argument $arg");
        }
    }
    usage('no CODE_PATH') unless defined $args{code};
    usage('no socket: pass --socket or set COCAINE_SOCKET') unless $args{socket};
    my $worker_id = $ENV{COCAINE_WORKER_ID};
    usage('COCAINE_WORKER_ID is not set') unless defined $worker_id && $worker_id ne '';
    my $app_name = $args{app} || (split m{/}, $args{code})[-1];
    $PREFIX = "cocaine worker $app_name/$worker_id";

    my $handlers = eval { load_app($args{code}) };
    if (!$handlers) {
        my $error = $@;
        chomp $error;
        log_line($error);
        return 1;
    }
    my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $args{socket});
    if (!$sock) {
        log_line("cannot connect to $args{socket}: $!");
        return 1;
    }
    my $worker = __PACKAGE__->new(
        sock        => $sock,
        handlers    => $handlers,
        worker_id   => $worker_id,
        heartbeat   => env_number('COCAINE_HEARTBEAT_MS', 5000) / 1000,
        timeout     => env_number('COCAINE_TIMEOUT_MS', 30000) / 1000,
        max_message => env_number('COCAINE_MAX_MESSAGE', DEFAULT_MAX_MESSAGE),
    );
    return $worker->run;
}

my %NOT_EVENTS = map { $_ => 1 }
    qw(BEGIN END INIT CHECK UNITCHECK DESTROY AUTOLOAD import unimport can isa VERSION);

# Loads the app file; returns { event => { code => CODE, streaming => 0|1 } }, or dies with a
# message saying what went wrong (the app's own error with its file and line).
sub load_app {
    my ($path) = @_;
    die "cannot load the app: $path: no such file\n" unless -f $path;
    open my $fh, '<', $path or die "cannot load the app: cannot read $path: $!\n";
    my $source = do { local $/; <$fh> };
    close $fh;
    # The app's package is the first one its file declares, else main.
    my ($package) = $source =~ /^\s*package\s+([A-Za-z_][\w:]*)\s*[;{]/m;
    $package //= 'main';
    my $abs = $path =~ m{\A/} ? $path : "./$path";
    {
        local @INC = (($abs =~ m{\A(.*)/[^/]*\z})[0] || '.', @INC);
        my $ok;
        {
            # `do` compiles the file in the caller's package: an app without a `package`
            # statement belongs in main, as it would run as a script.
            package main;
            $ok = do $abs;
        }
        die "loading $path failed:\n$@" if $@;
        die "cannot load the app: cannot read $path: $!\n" if !defined $ok && $!;
    }
    my %handlers;
    no strict 'refs';
    my $stash = \%{"${package}::"};
    for my $name (sort keys %$stash) {
        next if $name =~ /\A_/ || $NOT_EVENTS{$name} || $name =~ /::\z/;
        # A stash entry is a glob, or (an optimisation of newer perls) a code ref itself.
        my $entry = $stash->{$name};
        my $code = ref \$entry eq 'GLOB' ? *{$entry}{CODE} : ref $entry eq 'CODE' ? $entry : undef;
        next unless $code;
        # Only subs the app defines, not ones it imported (`use POSIX 'floor'`).
        my $gv = B::svref_2object($code)->GV;
        next unless $gv->can('STASH') && $gv->STASH->NAME eq $package;
        $handlers{$name} = { code => $code, streaming => Cocaine::is_streaming($package, $name) };
    }
    die "cannot load the app: package $package in $path defines no handlers: write a sub for each event\n"
        unless %handlers;
    return \%handlers;
}

# -- the loop -----------------------------------------------------------------------------

sub new {
    my ($class, %args) = @_;
    my $self = bless {
        %args,
        jobs        => {},     # sid -> Job the node considers open
        ready       => [],     # Jobs whose handler can run, in order
        in          => '',     # bytes read, not yet a whole frame
        out         => '',     # frames to write
        terminating => 0,
        bad         => 0,
        current     => undef,  # the Job whose handler is running
    }, $class;
    my $now = Time::HiRes::time;
    $self->{last_heard} = $now;
    $self->{next_heartbeat} = $now + $self->{heartbeat};
    return $self;
}

sub run {
    my ($self) = @_;
    $SIG{PIPE} = 'IGNORE';
    $self->{sock}->blocking(1);
    $self->send(text_frame(HANDSHAKE, $self->{worker_id}, 0 + PROTOCOL_VERSION, 0 + $$));
    while (1) {
        while (my $job = shift @{ $self->{ready} }) {
            $self->run_job($job);
        }
        $self->leave(0) if $self->{terminating} && !%{ $self->{jobs} };
        $self->pump(undef);
    }
}

sub run_job {
    my ($self, $job) = @_;
    return if $job->{ended};
    local $self->{current} = $job;
    $job->run;
    delete $self->{jobs}{ $job->{sid} };
}

# Reads and handles what the node sent, waiting up to $wait seconds (undef: until the next
# heartbeat is due) for something to arrive; sends heartbeats when due.
sub pump {
    my ($self, $wait) = @_;
    my $now = Time::HiRes::time;
    if ($now >= $self->{next_heartbeat}) {
        $self->send(frame("\x91\x02"));
        $self->{next_heartbeat} = $now + $self->{heartbeat};
    }
    my $silent_until = $self->{last_heard} + $self->{timeout};
    if ($now >= $silent_until) {
        log_line(sprintf 'nothing heard from the node for %d ms; exiting', $self->{timeout} * 1000);
        $self->leave(1);
    }
    $self->flush;
    my $until = $self->{next_heartbeat} < $silent_until ? $self->{next_heartbeat} : $silent_until;
    my $timeout = $until - $now;
    $timeout = $wait if defined $wait && $wait < $timeout;
    $timeout = 0 if $timeout < 0;
    my $rin = '';
    vec($rin, fileno $self->{sock}, 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, $timeout);
    return if $n <= 0;
    my $got = sysread $self->{sock}, $self->{in}, READ_SIZE, length $self->{in};
    if (!defined $got) {
        return if $! == EINTR || $! == EAGAIN;
        log_line("reading from the node failed ($!); exiting");
        $self->leave(0);
    }
    if ($got == 0) {
        if (length $self->{in}) {
            log_line('the node closed the channel in the middle of a frame; exiting');
            $self->leave(1);
        }
        $self->leave(0);
    }
    $self->{last_heard} = Time::HiRes::time;
    while (length $self->{in} >= 4) {
        my $length = unpack 'N', $self->{in};
        last if length $self->{in} < 4 + $length;
        my $body = substr $self->{in}, 0, 4 + $length, '';
        $self->dispatch(substr $body, 4);
    }
    $self->run_plain_meanwhile if $self->{current};
}

# While a streaming handler waits on the node, plain jobs that are ready run to completion
# (a plain handler never waits on the node, so this nests one level at most): a slow stream
# does not hold up quick calls. Streaming jobs keep their turn.
sub run_plain_meanwhile {
    my ($self) = @_;
    return if $self->{meanwhile};
    local $self->{meanwhile} = 1;
    my @streaming;
    while (my $job = shift @{ $self->{ready} }) {
        if ($job->{streaming}) {
            push @streaming, $job;
        } else {
            $self->run_job($job);
        }
    }
    unshift @{ $self->{ready} }, @streaming;
}

sub dispatch {
    my ($self, $body) = @_;
    my $message = eval { parse($body) };
    if (!$message) {
        my $reason = $@;
        chomp $reason;
        return $self->bad_message($reason);
    }
    my ($kind, $sid) = @$message;
    return if $kind == HEARTBEAT;
    if ($kind == TERMINATE) {
        # No new jobs will come; the loop leaves once the running ones are done.
        $self->{terminating} = 1;
        return;
    }
    return $self->invoke($sid, $message->[2], $message->[3]) if $kind == INVOKE;
    # A job that already ended on our side may still get request messages in flight.
    my $job = $self->{jobs}{$sid} or return;
    if ($kind == CHUNK) {
        $job->feed($message->[2]) or $self->bad_message("chunk for job $sid after the end of its request");
    } elsif ($kind == CHOKE) {
        $job->end_request;
    } elsif ($kind == CANCEL) {
        $job->cancel;
    }
}

sub invoke {
    my ($self, $sid, $event, $meta) = @_;
    if ($self->{terminating}) {
        return $self->send(text_frame(ERROR, 0 + $sid, 503, 'worker is terminating'));
    }
    return $self->bad_message("invoke for job $sid, which is still running") if $self->{jobs}{$sid};
    my $handler = $self->{handlers}{$event};
    if (!$handler) {
        return $self->send(text_frame(ERROR, 0 + $sid, 404, "no handler for event '$event'"));
    }
    my $job = Cocaine::Worker::Job->new($self, $sid, $event, $meta, $handler);
    $self->{jobs}{$sid} = $job;
    push @{ $self->{ready} }, $job if $job->{streaming};
}

# Called by a plain job whose request has ended, and by a job answered without running.
sub job_ready { push @{ $_[0]{ready} }, $_[1] }
sub job_gone  { delete $_[0]{jobs}{ $_[1]{sid} } }

sub bad_message {
    my ($self, $reason) = @_;
    $self->{bad}++;
    return if $self->{bad} > BAD_MESSAGE_LOG_LIMIT;
    log_line("ignored a bad message from the node: $reason");
    log_line('not logging further bad messages') if $self->{bad} == BAD_MESSAGE_LOG_LIMIT;
}

# -- writing ------------------------------------------------------------------------------

# Queues a frame; frames go out together before the worker waits, or once FLUSH_AT bytes
# are queued.
sub send {
    my ($self, $frame) = @_;
    $self->{out} .= $frame;
    $self->flush if length $self->{out} >= FLUSH_AT;
    return 1;
}

sub flush {
    my ($self) = @_;
    while (length $self->{out}) {
        my $n = syswrite $self->{sock}, $self->{out};
        if (!defined $n) {
            next if $! == EINTR;
            log_line("writing to the node failed ($!); exiting");
            $self->{out} = '';
            $self->leave(0);
        }
        substr $self->{out}, 0, $n, '';
    }
}

# Leaves the process: what was queued goes out first (unless the channel is broken).
sub leave {
    my ($self, $code) = @_;
    $self->flush if length $self->{out};
    STDOUT->flush;
    STDERR->flush;
    require POSIX;
    POSIX::_exit($code);
}

1;
