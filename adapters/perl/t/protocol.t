# The worker channel's decoder and encoders against good, malformed and hostile input.
use strict;
use warnings;
use Test::More;
use Data::MessagePack;
use Cocaine::Worker::Protocol qw(parse chunk_frame text_frame);

my $mp = Data::MessagePack->new;

is_deeply(parse($mp->pack([2])), [2], 'heartbeat');
is_deeply(parse($mp->pack([3, 7, 'echo', { timeout => 5 }])), [3, 7, 'echo', { timeout => 5 }], 'invoke');
is_deeply(parse(pack 'H*', '930407c4026869'), [4, 7, 'hi'], 'chunk with bin data');
is_deeply(parse($mp->pack([8, 'bye'])), [8, 'bye'], 'terminate');

my @bad = (
    '', "\xc1", "\x93\x04", $mp->pack(42), $mp->pack([]), $mp->pack(['3']), $mp->pack([99]),
    $mp->pack([1, 'w', 1, 1]), $mp->pack([6, 1, 500, 'x']), $mp->pack([3, 1]),
    $mp->pack([3, -1, 'e', {}]), $mp->pack([3, 1, 5, {}]), $mp->pack([3, 1, 'e', []]),
    $mp->pack([4, 1, 12]), $mp->pack([5, 1, 2]), $mp->pack([8, 5]), "\xdd\xff\xff\xff\xff",
    $mp->pack([2]) . "trailing",
);
for my $body (@bad) {
    ok(!eval { parse($body); 1 } && $@, 'refused ' . unpack('H*', $body) . ": $@");
}

is(unpack('H*', chunk_frame(7, 'hi')), '00000007930407c4026869', 'chunk: sid int, data bin');
my $wide = "\x{263a}";
is(unpack('H*', chunk_frame(7, $wide)), '00000008930407c403e298ba', 'wide chunk sent as UTF-8 bytes');
my $sid = 7;
my $text = "sid $sid";    # a number once used as a string is still packed as a number
is(unpack('H*', text_frame(6, 0 + $sid, 502, 'boom')), '0000000b940607cd01f6a4626f6f6d', 'error');
is(unpack('H*', text_frame(6, 7, 502, "caf\xe9")), '0000000d940607cd01f6a6636166efbfbd',
    'invalid UTF-8 in a message is replaced, not sent as a broken str');

done_testing;
