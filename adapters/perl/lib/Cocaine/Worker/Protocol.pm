package Cocaine::Worker::Protocol;
# The worker channel: kinds, frames (u32 big-endian length + msgpack array) and the checks
# that turn a frame from the node into a well-formed message or an error naming the problem.

use strict;
use warnings;
use B ();
use Data::MessagePack;
use Encode ();
use Exporter 'import';

use constant {
    HANDSHAKE => 1, HEARTBEAT => 2, INVOKE => 3, CHUNK => 4,
    CHOKE     => 5, ERROR     => 6, CANCEL => 7, TERMINATE => 8,
    PROTOCOL_VERSION    => 1,
    DEFAULT_MAX_MESSAGE => 64 * 1024 * 1024,
};

our @EXPORT_OK = qw(HANDSHAKE HEARTBEAT INVOKE CHUNK CHOKE ERROR CANCEL TERMINATE
    PROTOCOL_VERSION DEFAULT_MAX_MESSAGE frame chunk_frame text_frame parse);

# Data::MessagePack packs every byte string as bin, or (with utf8) every string as str; a
# message holds one or the other, so each frame is packed by the packer that fits it.
my $BIN  = Data::MessagePack->new;
my $TEXT = Data::MessagePack->new->utf8(1);
my $READ = Data::MessagePack->new;

sub frame {
    my ($body) = @_;
    return pack('N', length $body) . $body;
}

# [4, sid, data]: `data` bytes (a string with wide characters is sent as UTF-8).
sub chunk_frame {
    my ($sid, $data) = @_;
    if (utf8::is_utf8($data)) {
        $data = "$data";
        utf8::encode($data);
    }
    return frame($BIN->pack([0 + CHUNK, 0 + $sid, $data]));
}

# A message whose strings are text (handshake, error, terminate): invalid UTF-8 in a byte
# string is replaced rather than sent as a str the node would refuse. Numbers must be given
# as numbers (`0 + $code`): Data::MessagePack packs any scalar that was ever used as a string
# (constants used as hash keys too) as a string.
sub text_frame {
    my (@message) = @_;
    $message[0] = 0 + $message[0];
    for (@message) {
        next if ref || !defined || !is_string($_) || utf8::is_utf8($_);
        $_ = Encode::decode('UTF-8', $_, Encode::FB_DEFAULT);
    }
    return frame($TEXT->pack(\@message));
}

sub is_string {
    my $flags = B::svref_2object(\$_[0])->FLAGS;
    return ($flags & B::SVf_POK) ? 1 : 0;
}

sub is_int {
    my $flags = B::svref_2object(\$_[0])->FLAGS;
    return defined $_[0] && ($flags & B::SVf_IOK) && !($flags & B::SVf_POK) && $_[0] >= 0;
}

my %SHAPES = (
    HEARTBEAT() => [],
    INVOKE()    => [\&is_int, \&is_string, sub { ref $_[0] eq 'HASH' }],
    CHUNK()     => [\&is_int, \&is_string],
    CHOKE()     => [\&is_int],
    CANCEL()    => [\&is_int],
    TERMINATE() => [\&is_string],
);

# Decodes and checks a frame body from the node: an array ref [kind, args...], or dies with
# the reason.
sub parse {
    my ($body) = @_;
    my $message = eval { $READ->unpack($body) };
    die "not msgpack\n" if !defined $message && $@;
    die "not an array starting with a message kind\n"
        if ref $message ne 'ARRAY' || !@$message || !is_int($message->[0]);
    my $kind   = $message->[0];
    my $checks = $SHAPES{$kind} or die "kind $kind is not a node-to-worker message\n";
    die sprintf("kind %d with %d arguments, expected %d\n", $kind, $#$message, scalar @$checks)
        if $#$message != @$checks;
    for my $i (0 .. $#$checks) {
        die "kind $kind: argument " . ($i + 1) . " has the wrong type\n"
            unless $checks->[$i]->($message->[$i + 1]);
    }
    return $message;
}

1;
