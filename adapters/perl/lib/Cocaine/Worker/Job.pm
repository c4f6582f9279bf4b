package Cocaine::Worker::Job;
# One job: its request, the run of its handler and its reply.

use strict;
use warnings;
use Scalar::Util qw(blessed);
use Time::HiRes ();

use Cocaine ();
use Cocaine::Worker::Protocol qw(CHOKE ERROR chunk_frame text_frame);

sub new {
    my ($class, $worker, $sid, $event, $meta, $handler) = @_;
    return bless {
        worker        => $worker,
        sid           => $sid,
        event         => $event,
        meta          => $meta,
        code          => $handler->{code},
        streaming     => $handler->{streaming},
        chunks        => [],
        request_ended => 0,
        ended         => 0,    # a terminal message went out
        cancelled     => 0,
        running       => 0,
    }, $class;
}

# -- from the node ------------------------------------------------------------------------

sub feed {
    my ($self, $data) = @_;
    return 0 if $self->{request_ended};
    push @{ $self->{chunks} }, $data;
    return 1;
}

sub end_request {
    my ($self) = @_;
    return if $self->{request_ended};
    $self->{request_ended} = 1;
    $self->{worker}->job_ready($self) unless $self->{streaming};
}

# [7, sid]: 499 at once if the handler is not running, otherwise when it returns (the job
# holds its slot until then).
sub cancel {
    my ($self) = @_;
    return if $self->{ended} || $self->{cancelled};
    $self->{cancelled} = 1;
    return if $self->{running};
    $self->settle;
    $self->{worker}->job_gone($self);
}

# -- the handler --------------------------------------------------------------------------

sub run {
    my ($self) = @_;
    $self->{running} = 1;
    my $ok = eval {
        if ($self->{streaming}) {
            $self->{code}->(Cocaine::Worker::Request->new($self), Cocaine::Worker::Response->new($self));
        } else {
            $self->run_plain;
        }
        $self->finish;
        1;
    };
    $self->fail($@) unless $ok;
    $self->{running} = 0;
    $self->settle;
}

sub run_plain {
    my ($self) = @_;
    my $request = join '', @{ $self->{chunks} };
    $self->{chunks} = undef;
    my @result = $self->{code}->($request);
    @result = @{ $result[0] } if @result == 1 && ref $result[0] eq 'ARRAY';
    for my $chunk (@result) {
        next unless defined $chunk;
        last unless $self->write($chunk);
    }
}

# Sends a reply chunk; false if it was dropped because the job has ended.
sub write {
    my ($self, $chunk) = @_;
    die "a reply chunk must be a string, not " . (ref($chunk) || 'undef') . "\n"
        if ref $chunk || !defined $chunk;
    return 0 if $self->{ended} || $self->{cancelled};
    my $frame = chunk_frame($self->{sid}, $chunk);
    my $max = $self->{worker}{max_message};
    if (length($frame) - 4 > $max) {
        die Cocaine::Error->new(413,
            sprintf 'reply chunk of %d bytes is over max-message (%d bytes)', length $chunk, $max);
    }
    return $self->{worker}->send($frame);
}

sub finish {
    my ($self) = @_;
    return 0 if $self->{ended} || $self->{cancelled};
    $self->{ended} = 1;
    return $self->{worker}->send(text_frame(CHOKE, 0 + $self->{sid}));
}

sub fail_with {
    my ($self, $code, $message) = @_;
    return 0 if $self->{ended} || $self->{cancelled};
    $self->{ended} = 1;
    my $max = $self->{worker}{max_message};
    $message = substr $message, 0, $max - 64 if length $message > $max - 64;
    return $self->{worker}->send(text_frame(ERROR, 0 + $self->{sid}, 0 + $code, "$message"));
}

sub fail {
    my ($self, $err) = @_;
    if (blessed $err && $err->isa('Cocaine::Cancelled') && $self->{cancelled}) {
        return;    # the normal way out of a cancelled handler
    }
    if (blessed $err && $err->isa('Cocaine::Error')) {
        return $self->fail_with($err->code, $err->message);
    }
    my $text = "$err";
    chomp $text;
    Cocaine::Worker::log_line("job $self->{sid} (event '$self->{event}') failed: $text");
    $self->fail_with(502, $text);
}

sub settle {
    my ($self) = @_;
    return unless $self->{cancelled} && !$self->{ended};
    $self->{ended} = 1;
    $self->{worker}->send(text_frame(ERROR, 0 + $self->{sid}, 499, 'cancelled'));
}

package Cocaine::Worker::Request;
# A streaming job's request: `$request->next` returns its chunks one by one as they arrive
# (undef at the end), `$request->read` the rest in one string.

sub new { bless { job => $_[1] }, $_[0] }

sub sid   { $_[0]{job}{sid} }
sub event { $_[0]{job}{event} }
sub meta  { $_[0]{job}{meta} }

sub next {
    my ($self) = @_;
    my $job = $self->{job};
    while (1) {
        die Cocaine::Cancelled->new($job->{sid}) if $job->{cancelled};
        return shift @{ $job->{chunks} } if @{ $job->{chunks} };
        return undef if $job->{request_ended};
        $job->{worker}->pump(undef);
    }
}

sub read {
    my ($self) = @_;
    my $all = '';
    while (defined(my $chunk = $self->next)) {
        $all .= $chunk;
    }
    return $all;
}

package Cocaine::Worker::Response;
# A streaming job's reply: write, close, error; `cancelled` and `sleep` listen to the node.

sub new { bless { job => $_[1] }, $_[0] }

sub write {
    my ($self, $chunk) = @_;
    my $job = $self->{job};
    $job->{worker}->pump(0);
    return 1 if $job->write($chunk);
    die Cocaine::Cancelled->new($job->{sid}) if $job->{cancelled};
    die "job $job->{sid}: write after the response was closed\n";
}

sub close { $_[0]{job}->finish; return }

sub error {
    my ($self, $code, $message) = @_;
    die "error code must be an integer in 0..2**32-1\n"
        unless defined $code && $code =~ /\A[0-9]{1,10}\z/ && $code <= 0xFFFFFFFF;
    $self->{job}->fail_with($code, $message // '');
    return;
}

sub closed { $_[0]{job}{ended} || $_[0]{job}{cancelled} }

# Whether the node cancelled the job (reads what the node sent so far).
sub cancelled {
    my ($self) = @_;
    $self->{job}{worker}->pump(0) unless $self->{job}{cancelled};
    return $self->{job}{cancelled};
}

# Waits $seconds while listening to the node; returns false at once if the job is cancelled.
sub sleep {
    my ($self, $seconds) = @_;
    my $job = $self->{job};
    my $deadline = Time::HiRes::time + $seconds;
    while (!$job->{cancelled}) {
        my $left = $deadline - Time::HiRes::time;
        return 1 if $left <= 0;
        $job->{worker}->pump($left);
    }
    return 0;
}

1;
